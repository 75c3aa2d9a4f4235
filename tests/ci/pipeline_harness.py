"""Runs the GitLab pipelines for real with gitlab-ci-local (npm, pinned in package.json): its shell
executor runs each job's scripts on this machine, in a git checkout of a temporary project.

What stands in for GitLab and AWS: local AWS with the CI roles, the OIDC provider, the ECR
repositories and the trigger Lambda (its aliases and AWS_IAM URLs, run by local Lambda) of a
synthesized CDK app; GitLab ID tokens minted for the job's project and branch
(local_aws.iam.web_identity); GitLab's job-artifacts API (a stub serving the upstream test job's
artifact); a recorded MWAA/Airflow REST API. The image build is the one job replaced (no
container builder here): local_mode/image_archive.py writes the OCI archive BuildKit would.

The jobs' `image:` is not pulled: the job image's Python is this machine's Python 3.12, reached
through a PATH that holds only what the job image has (no Node, no repository virtualenv).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import yaml

REPO = Path(__file__).resolve().parents[2]
GITLAB_CI_LOCAL = REPO / "node_modules" / ".bin" / "gitlab-ci-local"
NODE_BIN = REPO / "node_modules" / ".bin"
GITLAB_URL = "https://gitlab.example.com"
MLOPS_PROJECT_PATH = "ml-platform/mlops"
# Persistent between test runs, like a runner's cache: package downloads are not what is tested.
CACHE = Path(os.environ.get("MLOPS_PIPELINE_TEST_CACHE", Path.home() / ".cache" / "mlops-pipeline-tests"))
# Tools every job image has (coreutils, git, tar, ...) but neither Node nor npm.
_SYSTEM_TOOLS_WITHOUT_NODE = ("node", "nodejs", "npm", "npx", "corepack")


def image_bin(tmp: Path, python: str = sys.executable) -> Path:
    """A PATH directory like python:3.12-bookworm's: Debian's tools and Python 3.12, no Node."""
    out = tmp / "image-bin"
    out.mkdir(exist_ok=True)
    for folder in ("/usr/local/bin", "/usr/bin", "/bin"):
        for tool in Path(folder).iterdir() if Path(folder).is_dir() else []:
            if tool.name in _SYSTEM_TOOLS_WITHOUT_NODE or (out / tool.name).exists():
                continue
            (out / tool.name).symlink_to(tool)
    base = Path(os.path.realpath(python))
    for name in ("python3", "python", "python3.12"):
        (out / name).unlink(missing_ok=True)
        (out / name).symlink_to(_base_interpreter(base))
    return out


def _base_interpreter(python: Path) -> Path:
    """The interpreter a venv was made from (jobs make their own venvs from it)."""
    cfg = python.parent.parent / "pyvenv.cfg"
    if cfg.exists():
        for line in cfg.read_text().splitlines():
            if line.startswith("home"):
                home = Path(line.split("=", 1)[1].strip())
                for name in ("python3.12", "python3"):
                    if (home / name).exists():
                        return home / name
    return python


def job_env(path: list[Path], home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A clean environment: nothing of this machine's AWS, pip or Python settings reaches a job."""
    env = {
        "PATH": os.pathsep.join(str(p) for p in path),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "npm_config_cache": str(CACHE / "npm"),
    }
    # The machine's TLS trust (a runner host's), so package downloads work behind its proxy.
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "CURL_CA_BUNDLE"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    env.update(extra or {})
    return env


@dataclass
class GitProject:
    """A temporary GitLab project checkout: a git repository with a parseable origin."""

    path: Path
    project_path: str

    @classmethod
    def create(cls, path: Path, project_path: str, files: dict[str, str | bytes | Path], branch: str) -> GitProject:
        path.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            target = path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, Path):
                shutil.copy2(content, target)
            elif isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content)
        git = ["git", "-C", str(path), "-c", "user.email=ci@example.com", "-c", "user.name=CI"]
        subprocess.run([*git, "init", "-q", "-b", branch], check=True)
        subprocess.run([*git, "remote", "add", "origin", f"git@gitlab.example.com:{project_path}.git"], check=True)
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-q", "-m", "pipeline under test"], check=True)
        (path / ".cache").symlink_to(CACHE / "project-cache", target_is_directory=True)
        (CACHE / "project-cache").mkdir(parents=True, exist_ok=True)
        return cls(path, project_path)


@dataclass
class PipelineRun:
    returncode: int
    output: str
    seconds: float
    jobs: dict[str, float] = field(default_factory=dict)  # job -> seconds, from --timestamps

    def passed(self, job: str) -> bool:
        return any(line.strip().startswith("PASS") and line.split()[-1] == job for line in self.output.splitlines())


def run_pipeline(
    project: GitProject,
    *,
    jobs: list[str] | None = None,
    variables: dict[str, str] | None = None,
    env: dict[str, str],
    manual: list[str] | None = None,
    with_needs: bool = True,
    timeout: float = 900,
) -> PipelineRun:
    """The whole pipeline, or ``jobs`` with the jobs they need (``with_needs``) or alone, reusing
    the artifacts of the jobs they need from the project's earlier runs (a job retried in GitLab)."""
    command = [
        str(GITLAB_CI_LOCAL),
        "--force-shell-executor",
        "--no-color",
        "--timestamps",
        "--ignore-predefined-vars",
        "CI_PROJECT_DIR,CI_PIPELINE_SOURCE,CI_PIPELINE_ID,CI_API_V4_URL,CI_JOB_TOKEN,CI_SERVER_HOST",
        "--variable",
        "CI_PROJECT_DIR=.",
    ]
    for name, value in (variables or {}).items():
        command += ["--variable", f"{name}={value}"]
    for job in manual or []:
        command += ["--manual", job]
    if jobs:
        command += ["--needs", *jobs] if with_needs else jobs
    started = time.monotonic()
    done = subprocess.run(
        command,
        cwd=project.path,
        env={**env, "PATH": f"{NODE_BIN}{os.pathsep}{env['PATH']}"},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = done.stdout + done.stderr
    run = PipelineRun(done.returncode, output, time.monotonic() - started, _job_seconds(output))
    record = os.environ.get("MLOPS_PIPELINE_TIMINGS")  # benchmarks/ci_pipelines.py collects these
    if record:
        with open(record, "a") as out:
            entry = {"project": project.project_path, "jobs_run": jobs or "all", "seconds": run.seconds}
            out.write(json.dumps({**entry, "jobs": install_seconds(output)}) + "\n")
    return run


def _elapsed(text: str) -> float:
    number, _, unit = text.strip().partition(" ")
    value = float(number)
    return value * 60 if unit.startswith("min") else value / 1000 if unit == "ms" else value


def install_seconds(output: str) -> dict[str, dict[str, float]]:
    """Per job: its duration and how much of it went to installing dependencies (from the start of
    the job to the command after its last `pip install`/`uv pip install`/bootstrap line), read from
    gitlab-ci-local's --timestamps lines `[hh:mm:ss <elapsed in job>] <job> $ <command>`."""
    commands: dict[str, list[tuple[float, str]]] = {}
    for line in output.splitlines():
        if not line.startswith("[") or "] " not in line:
            continue
        stamp, _, rest = line[1:].partition("] ")
        job, _, command = rest.partition(" ")
        command = command.strip()
        if not command.startswith("$ ") or " " not in stamp:
            continue
        try:
            commands.setdefault(job, []).append((_elapsed(stamp.split(" ", 1)[1]), command))
        except ValueError:
            continue
    durations = _job_seconds(output)
    result = {}
    for job, lines in commands.items():
        installs = [i for i, (_, c) in enumerate(lines) if "pip install" in c or "bootstrap.sh" in c]
        install = lines[installs[-1] + 1][0] if installs and installs[-1] + 1 < len(lines) else 0.0
        result[job] = {"seconds": durations.get(job, 0.0), "install_seconds": install}
    return result


def _job_seconds(output: str) -> dict[str, float]:
    """Job durations from gitlab-ci-local's "<job> finished in 12.3 s" lines."""
    found = {}
    for line in output.splitlines():
        if " finished in " in line:
            head, _, tail = line.partition(" finished in ")
            job = head.split()[-1]
            number, unit = tail.split()[:2]
            try:
                found[job] = float(number) * (60 if unit.startswith("min") else 0.001 if unit == "ms" else 1)
            except ValueError:
                continue
    return found


def replace_job_script(ci_file: Path, job: str, script: list[str], drop: tuple[str, ...] = ()) -> None:
    """The one job the emulator cannot run as written (the image build), given a stand-in script;
    `drop` removes keys (e.g. a job's `image:`) the stand-in does not use."""
    header, _, body = ci_file.read_text().partition("\n---\n")
    document = yaml.safe_load(body if body else header)
    document[job]["script"] = script
    for key in drop:
        document[job].pop(key, None)
    text = yaml.safe_dump(document, sort_keys=False, width=1000)
    ci_file.write_text(f"{header}\n---\n{text}" if body else text)


def drop_caches(ci_file: Path) -> None:
    """gitlab-ci-local copies cache paths around each job; the test project's .cache is a symlink
    to a persistent folder instead (a runner's cache), so the `cache:` keys are left out."""
    header, _, body = ci_file.read_text().partition("\n---\n")
    document = yaml.safe_load(body if body else header)
    for value in document.values():
        if isinstance(value, dict):
            value.pop("cache", None)
    text = yaml.safe_dump(document, sort_keys=False, width=1000)
    ci_file.write_text(f"{header}\n---\n{text}" if body else text)


# ---- stand-ins for GitLab's API and for Airflow behind MWAA ------------------------------------


class _Server:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class GitLabArtifacts(_Server):
    """GitLab's `GET /api/v4/projects/:id/jobs/:job_id/artifacts` (a zip), for a job token only:
    what the MLOps project's fetch job downloads from the model repository's test job."""

    def __init__(self) -> None:
        self.archives: dict[tuple[str, str], bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                owner.requests.append((self.path, self.headers.get("JOB-TOKEN")))
                parts = self.path.strip("/").split("/")  # api v4 projects ID jobs JOB artifacts
                if not self.headers.get("JOB-TOKEN"):
                    return _send(self, 401, b'{"message":"401 Unauthorized"}', "application/json")
                archive = owner.archives.get((parts[3], parts[5])) if len(parts) == 7 else None
                if archive is None:
                    return _send(self, 404, b'{"message":"404 Not Found"}', "application/json")
                _send(self, 200, archive, "application/zip")

            def log_message(self, *args):
                pass

        super().__init__(Handler)

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/v4"

    def add_job(self, project_id: str, job_id: str, folder: Path, prefix: str = "model-source") -> None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for path in sorted(folder.rglob("*")):
                if path.is_file() and not ({".git", "__pycache__", ".venv", ".pytest_cache"} & set(path.parts)):
                    archive.write(path, f"{prefix}/{path.relative_to(folder)}")
        self.archives[(project_id, job_id)] = buffer.getvalue()


class RecordedAirflow(_Server):
    """Airflow's REST API as MWAA's InvokeRestApi reaches it (`/api/v2/dags/{dag}/dagRuns`): a run
    is created once per run id (409 after), and reads back as `success`; the list of a DAG's runs
    filters by `updated_at_gte` and pages by `limit`/`offset`, as Airflow's does (the DAGs
    themselves are tested against real Airflow in tests/dags and tests/e2e)."""

    def __init__(self) -> None:
        self.runs: dict[tuple[str, str], dict[str, Any]] = {}
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                dag = self.path.split("/")[4]
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = (dag, body["dag_run_id"])
                if key in owner.runs:
                    return _send(self, 409, b'{"detail":"DAGRun already exists"}', "application/json")
                now = datetime.now(UTC).isoformat()
                owner.runs[key] = {**body, "dag_id": dag, "state": "queued", "updated_at": now}
                _send(self, 200, json.dumps(owner.runs[key]).encode(), "application/json")

            def do_GET(self):  # noqa: N802
                path, _, query = self.path.partition("?")
                parts = path.split("/")
                if len(parts) == 6:  # /api/v2/dags/{dag}/dagRuns
                    found = owner.list_runs(parts[4], {k: v[0] for k, v in parse_qs(query).items()})
                    return _send(self, 200, json.dumps(found).encode(), "application/json")
                run = owner.runs.get((parts[4], parts[6])) if len(parts) > 6 else None
                if run is None:
                    return _send(self, 404, b'{"detail":"not found"}', "application/json")
                run["state"] = "success"
                _send(self, 200, json.dumps(run).encode(), "application/json")

            def log_message(self, *args):
                pass

        super().__init__(Handler)

    def list_runs(self, dag: str, query: dict[str, str]) -> dict[str, Any]:
        since = datetime.fromisoformat(query["updated_at_gte"]) if "updated_at_gte" in query else None
        runs = [
            run
            for (run_dag, _), run in self.runs.items()
            if run_dag == dag and (since is None or datetime.fromisoformat(run["updated_at"]) >= since)
        ]
        offset, limit = int(query.get("offset", 0)), int(query.get("limit", 100))
        return {"dag_runs": runs[offset : offset + limit], "total_entries": len(runs)}
