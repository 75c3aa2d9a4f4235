"""Builds the files MWAA reads from its bucket, from ``dag_assets/`` and ``mlops_core/``.

Everything is staged deterministically (sorted entries, fixed zip timestamps) so an unchanged
bundle has an unchanged hash: CDK then uploads nothing and MWAA is not updated for nothing.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import mlops_core

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DAG_ASSETS = REPO_ROOT / "dag_assets"
SUPPORTED_AIRFLOW_VERSIONS = ("3.3.1", "2.11.2")
MWAA_DAGS_FOLDER = "/usr/local/airflow/dags"
_IGNORED = ("__pycache__", ".pytest_cache")
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def _files(root: Path) -> list[Path]:
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and not any(part in _IGNORED for part in p.parts) and p.suffix != ".pyc"
    )


def constraint_file_name(airflow_version: str) -> str:
    return f"constraints-{airflow_version}.txt"


def requirements_text(dag_assets: Path, airflow_version: str) -> str:
    """MWAA's requirements.txt: the image's constraints (shipped in the bucket, so a private
    environment needs no access to GitHub) followed by the DAGs' own requirements."""
    if airflow_version not in SUPPORTED_AIRFLOW_VERSIONS:
        raise ValueError(
            f"airflow_version={airflow_version!r} is not supported; use one of {SUPPORTED_AIRFLOW_VERSIONS}"
        )
    constraint = f"{MWAA_DAGS_FOLDER}/constraints/{constraint_file_name(airflow_version)}"
    if not (dag_assets / "constraints" / constraint_file_name(airflow_version)).is_file():
        raise FileNotFoundError(f"missing {dag_assets}/constraints/{constraint_file_name(airflow_version)}")
    body_path = dag_assets / "requirements.txt"
    body = body_path.read_text() if body_path.is_file() else ""
    lines = [line for line in body.splitlines() if not line.strip().startswith(("--constraint", "-c "))]
    return "\n".join([f'--constraint "{constraint}"', *lines]).rstrip() + "\n"


def write_deterministic_zip(target: Path, entries: dict[str, Path]) -> None:
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, entries[name].read_bytes())


@dataclass(frozen=True)
class StagedBundle:
    dags_dir: Path
    """Becomes ``dags/`` in the bucket: DAG files and the image constraints."""
    environment_files: dict[str, Path]
    """File name -> staged file, each alone in its own folder: requirements.txt, plugins.zip and
    startup.sh go to ``environment/`` one deployment each, and their S3 object versions are pinned
    on the environment."""
    hashes: dict[str, str]
    """File name -> sha256, to re-read an object version only on change."""


def stage_bundle(*, dag_assets: Path = DEFAULT_DAG_ASSETS, airflow_version: str) -> StagedBundle:
    staging = Path(tempfile.mkdtemp(prefix="mlops-dag-bundle-"))
    dags_dir = staging / "dags"
    shutil.copytree(dag_assets / "dags", dags_dir, ignore=shutil.ignore_patterns(*_IGNORED, "*.pyc"))
    shutil.copytree(dag_assets / "constraints", dags_dir / "constraints")

    def staged(name: str) -> Path:
        folder = staging / "environment" / name.replace(".", "_")
        folder.mkdir(parents=True)
        return folder / name

    files = {"requirements.txt": staged("requirements.txt"), "plugins.zip": staged("plugins.zip")}
    files["requirements.txt"].write_text(requirements_text(dag_assets, airflow_version))

    # plugins.zip puts mlops_core on the workers' Python path (MWAA adds the plugins folder).
    core_root = Path(mlops_core.__file__).parent
    entries = {f"mlops_core/{p.relative_to(core_root).as_posix()}": p for p in _files(core_root) if p.suffix == ".py"}
    plugins_root = dag_assets / "plugins"
    if plugins_root.is_dir():
        entries.update({p.relative_to(plugins_root).as_posix(): p for p in _files(plugins_root)})
    write_deterministic_zip(files["plugins.zip"], entries)

    startup = dag_assets / "startup.sh"
    if startup.is_file():
        files["startup.sh"] = staged("startup.sh")
        shutil.copyfile(startup, files["startup.sh"])

    hashes = {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in sorted(files.items())}
    return StagedBundle(dags_dir=dags_dir, environment_files=files, hashes=hashes)
