"""``mlops artifacts fetch``: download and unpack an upstream job's artifacts from GitLab's API.

``GET {api}/projects/{project_id}/jobs/{job_id}/artifacts`` with ``JOB-TOKEN: $CI_JOB_TOKEN``
(the upstream project must allow this project in its job token allowlist) or a ``PRIVATE-TOKEN``.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

import requests

from mlops_cli.errors import CliError

MAX_ARCHIVE_BYTES = 2 * 1024**3
CHUNK = 1024 * 1024


def _auth_header(job_token: str | None, private_token: str | None) -> dict[str, str]:
    if private_token:
        return {"PRIVATE-TOKEN": private_token}
    if job_token:
        return {"JOB-TOKEN": job_token}
    raise CliError("no GitLab token: set GITLAB_TOKEN, or run inside a GitLab job (CI_JOB_TOKEN)", 2)


def _explain(status: int, project_id: str, job_id: str) -> str:
    if status in (401, 403):
        return (
            f"GitLab refused access ({status}) to job {job_id} of project {project_id}: add this "
            "project to the upstream project's CI/CD job token allowlist, or use a token with read_api"
        )
    if status == 404:
        return f"job {job_id} of project {project_id} or its artifacts were not found (expired?)"
    return f"GitLab answered {status} for the artifacts of job {job_id} of project {project_id}"


def safe_extract(archive: Path, destination: Path) -> list[str]:
    """Unzip refusing absolute paths, '..' and symlinks (a hostile archive stays inside)."""
    destination.mkdir(parents=True, exist_ok=True)
    root = destination.resolve()
    extracted = []
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            name = PurePosixPath(info.filename)
            mode = info.external_attr >> 16
            if name.is_absolute() or ".." in name.parts or (mode & 0o170000) == 0o120000:
                raise CliError(f"refusing unsafe path {info.filename!r} in the artifacts archive")
            target = (root / name).resolve()
            if not target.is_relative_to(root):
                raise CliError(f"refusing unsafe path {info.filename!r} in the artifacts archive")
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
            extracted.append(str(name))
    return extracted


def fetch_artifacts(
    *,
    api_url: str,
    project_id: str,
    job_id: str,
    destination: Path,
    job_token: str | None,
    private_token: str | None,
    timeout: float = 60.0,
) -> list[str]:
    if not project_id.isdigit() or not job_id.isdigit():
        raise CliError(f"project id {project_id!r} and job id {job_id!r} must be numbers", 2)
    url = f"{api_url.rstrip('/')}/projects/{project_id}/jobs/{job_id}/artifacts"
    headers = _auth_header(job_token, private_token)
    try:
        with requests.get(url, headers=headers, stream=True, timeout=timeout) as response:
            if response.status_code != 200:
                raise CliError(_explain(response.status_code, project_id, job_id))
            with tempfile.NamedTemporaryFile(suffix=".zip", delete=False) as tmp:
                size = 0
                for chunk in response.iter_content(CHUNK):
                    size += len(chunk)
                    if size > MAX_ARCHIVE_BYTES:
                        raise CliError(f"artifacts of job {job_id} exceed {MAX_ARCHIVE_BYTES} bytes")
                    tmp.write(chunk)
                archive = Path(tmp.name)
    except requests.RequestException as exc:
        raise CliError(f"cannot reach GitLab at {api_url}: {type(exc).__name__}") from None
    try:
        return safe_extract(archive, destination)
    except zipfile.BadZipFile:
        raise CliError(f"the artifacts of job {job_id} are not a zip archive") from None
    finally:
        archive.unlink(missing_ok=True)
