"""Runners that do the real work of a model image without Docker: the image's ``train``,
``evaluate`` and ``serve`` entry points run as local processes on data from the local S3.

Select them with ``--job-runner local_aws.sagemaker.process_runners:ProcessJobRunner`` and
``--endpoint-runner local_aws.sagemaker.process_runners:ProcessEndpointRunner`` (or
``LocalAws(job_runner=..., endpoint_runner=...)``).

What stands in for the container:
- the image URI ``<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>`` maps to a source
  directory (the model repository checked out locally): scenario ``runner.model_sources``
  ``{"<repository>": "/path"}``, else ``runner.default_model_source``, else the repository's
  ``model_template/``. The tag must exist in the local ECR repository, as a real pull needs it;
- the image's commands are the source's ``[project.scripts]`` (``train = "pkg.module:main"``),
  run with a Python that has the model's requirements (``runner.python``, default: the Python
  running this server) and ``<source>/src`` on ``PYTHONPATH``;
- ``/opt/ml`` is a fresh directory per job or deployment (the template's ``MLOPS_ML_ROOT``):
  ``input/config/hyperparameters.json``, ``input/data/<channel>/``, ``model/``, ``output/failure``,
  ``processing/...`` exactly as SageMaker lays them out.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tarfile
import threading
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from local_aws.sagemaker.runners import Deployment, JobOutcome, RunnerContext, RunnerFailure, split_s3_uri

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SOURCE = REPO_ROOT / "model_template"
CONTAINER_ROOT = "/opt/ml"
IMAGE_URI = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com/(?P<repository>[^:@]+)"
    r"(?::(?P<tag>[^@]+))?(?:@(?P<digest>.+))?$"
)
# The line format SageMaker metric definitions scrape from the template's training log.
METRIC_LINE = re.compile(r"^metric (?P<name>[A-Za-z0-9_:.-]+)=(?P<value>-?[0-9.eE+-]+)\s*$")
MAX_REASON = 1024  # SageMaker keeps at most 1 KB of FailureReason
STOP_GRACE_SECONDS = 10.0  # between SIGTERM and SIGKILL when a job or an endpoint is stopped


def _settings(ctx: RunnerContext) -> dict[str, Any]:
    return ctx.scenario.get("runner") or {}


def parse_image_uri(uri: str) -> dict[str, str]:
    match = IMAGE_URI.match(uri or "")
    if not match:
        raise RunnerFailure(
            f"ClientError: image {uri!r} is not an ECR image URI "
            "(<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>)"
        )
    parts = match.groupdict()
    if not parts["tag"] and not parts["digest"]:
        parts["tag"] = "latest"
    return parts


def require_image(ctx: RunnerContext, uri: str) -> None:
    """As a real pull does (BatchGetImage, with the job's or endpoint's role): the repository and
    tag must exist in ECR and the role must be allowed to pull."""
    parts = parse_image_uri(uri)
    ecr = ctx.client("ecr")
    image_id = {"imageTag": parts["tag"]} if parts["tag"] else {"imageDigest": parts["digest"]}
    try:
        response = ecr.batch_get_image(repositoryName=parts["repository"], imageIds=[image_id])
        found = response["images"]
    except Exception as exc:  # noqa: BLE001 - RepositoryNotFound/AccessDenied both mean "cannot pull"
        found = []
        detail = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
    else:
        detail = "ImageNotFoundException"
    if not found:
        raise RunnerFailure(
            f"CannotStartContainerError: Requested image {uri} not found in ECR ({detail}). "
            "Push the image (the CI publish stage) before training or deploying it."
        )


def source_dir(ctx: RunnerContext, image_uri: str) -> Path:
    settings = _settings(ctx)
    repository = parse_image_uri(image_uri)["repository"]
    configured = (settings.get("model_sources") or {}).get(repository) or settings.get("default_model_source")
    path = Path(configured) if configured else DEFAULT_SOURCE
    if not (path / "pyproject.toml").is_file():
        raise RunnerFailure(f"CannotStartContainerError: no model source for {repository} at {path}")
    return path


def entry_point(source: Path, command: str) -> str:
    """``module:function`` of an image command, from the source's ``[project.scripts]``."""
    scripts = tomllib.loads((source / "pyproject.toml").read_text()).get("project", {}).get("scripts", {})
    target = scripts.get(command)
    if not target:
        raise RunnerFailure(
            f'CannotStartContainerError: executable "{command}" not found in the image ({source}/pyproject.toml)'
        )
    return target


def command_line(ctx: RunnerContext, source: Path, command: str, arguments: list[str]) -> list[str]:
    module, _, function = entry_point(source, command).partition(":")
    python = _settings(ctx).get("python") or sys.executable
    bootstrap = f"import sys; sys.argv = sys.argv[1:]; from {module} import {function} as entry; sys.exit(entry())"
    return [python, "-c", bootstrap, command, *arguments]


def container_env(source: Path, root: Path, extra: dict[str, str] | None) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        # The container sees no AWS endpoint overrides or credentials of the host process.
        if not key.startswith(("AWS_", "LOCAL_AWS"))
    }
    # Without a container, /opt/ml is <root>: a path under it in the job's environment (Model
    # Monitor's contract passes dataset_source, output_path and the baseline files so) must name the
    # same files the job's inputs were written to.
    env.update(
        {
            key: str(local_path(root, value)) if value.startswith(CONTAINER_ROOT + "/") else value
            for key, value in (extra or {}).items()
        }
    )
    env.update(
        {
            "MLOPS_ML_ROOT": str(root),
            "PYTHONPATH": str(source / "src"),
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return env


def local_path(root: Path, container_path: str) -> Path:
    """/opt/ml/processing/test -> <root>/processing/test (other absolute paths under <root>/fs)."""
    if container_path == CONTAINER_ROOT or container_path.startswith(CONTAINER_ROOT + "/"):
        return root / container_path[len(CONTAINER_ROOT) :].lstrip("/")
    return root / "fs" / container_path.lstrip("/")


def run_container_process(ctx: RunnerContext, argv: list[str], *, env: dict[str, str], cwd: Path, on_line=None) -> int:
    """Run one entry point, streaming its output to the job's log; stop it when asked."""
    log_file = ctx.work_dir / f"{ctx.kind}.log"
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    child = ctx.processes.start(
        argv,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )

    def pump() -> None:
        assert child.process.stdout is not None
        with log_file.open("a") as sink:
            for line in child.process.stdout:
                line = line.rstrip("\n")
                sink.write(line + "\n")
                ctx.log(line)
                if on_line:
                    on_line(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    while not child.exited():
        if ctx.stop_requested.wait(0.2):
            child.stop(STOP_GRACE_SECONDS)
            break
    code = child.reap()  # the container ends with its main process: nothing it left behind survives
    reader.join(timeout=10)
    return code


def _read_reason(path: Path, fallback: str) -> str:
    text = path.read_text(errors="replace").strip() if path.is_file() else ""
    return (text or fallback)[:MAX_REASON]


def _tar_directory(directory: Path, archive_path: Path) -> Path:
    with tarfile.open(archive_path, "w:gz") as archive:
        for item in sorted(directory.rglob("*")):
            if item.is_file():
                archive.add(item, arcname=str(item.relative_to(directory)))
    return archive_path


def _upload_tree(ctx: RunnerContext, directory: Path, uri: str) -> list[str]:
    uploaded = []
    for item in sorted(directory.rglob("*")):
        if item.is_file():
            target = f"{uri.rstrip('/')}/{item.relative_to(directory).as_posix()}"
            ctx.upload_file(item, target)
            uploaded.append(target)
    return uploaded


def _download(ctx: RunnerContext, uri: str, dest: Path) -> None:
    """A prefix's objects into dest (SageMaker's S3Prefix), or one object when the URI is a file."""
    dest.mkdir(parents=True, exist_ok=True)
    if ctx.download_prefix(uri, dest):
        return
    raise RunnerFailure(f'ClientError: No S3 objects found under S3 URL "{uri}"')


def _download_manifest(ctx: RunnerContext, uri: str, dest: Path) -> None:
    """A ManifestFile input: ``uri`` is a JSON manifest ``[{"prefix": "s3://bucket/prefix/"},
    "relative/key", ...]`` (the S3DataSource reference's format); each listed object
    ``<prefix><relative key>`` is written to ``dest/<relative key>``. Only the listed objects are
    read, as the job's role; a manifest SageMaker cannot read or use fails the job."""
    bucket, key = split_s3_uri(uri)
    s3 = ctx.client("s3")
    try:
        manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        prefix = manifest[0]["prefix"]
        entries = manifest[1:]
        if not isinstance(prefix, str) or not all(isinstance(e, str) for e in entries):
            raise TypeError
    except (ValueError, KeyError, IndexError, TypeError):
        raise RunnerFailure(
            f'ClientError: the manifest file "{uri}" is not a JSON list of a {{"prefix": "s3://..."}} '
            "object and relative keys"
        ) from None
    if not entries:
        raise RunnerFailure(f'ClientError: the manifest file "{uri}" lists no objects')
    source_bucket, source_prefix = split_s3_uri(prefix)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    for relative in entries:
        target = (dest / relative).resolve()
        if not target.is_relative_to(root) or relative.startswith("/"):
            raise RunnerFailure(f'ClientError: the manifest file "{uri}" lists {relative!r} outside its prefix')
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(s3.get_object(Bucket=source_bucket, Key=source_prefix + relative)["Body"].read())


class ProcessJobRunner:
    """Training and processing jobs run the image's real entry points as processes."""

    def run_training(self, ctx: RunnerContext) -> JobOutcome:
        job = ctx.description
        image = job["AlgorithmSpecification"]["TrainingImage"]
        require_image(ctx, image)
        source = source_dir(ctx, image)
        root = ctx.work_dir / "opt_ml"
        config_dir = root / "input" / "config"
        config_dir.mkdir(parents=True, exist_ok=True)
        (config_dir / "hyperparameters.json").write_text(json.dumps(job.get("HyperParameters") or {}))
        (config_dir / "resourceconfig.json").write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]}))
        channels = {}
        for channel in job.get("InputDataConfig", []):
            name = channel["ChannelName"]
            uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
            ctx.log(f"downloading channel {name} from {uri}")
            _download(ctx, uri, root / "input" / "data" / name)
            channels[name] = {"S3DistributionType": "FullyReplicated", "TrainingInputMode": "File"}
        (config_dir / "inputdataconfig.json").write_text(json.dumps(channels))
        (root / "model").mkdir(exist_ok=True)
        (root / "output").mkdir(exist_ok=True)

        metrics: dict[str, float] = {}

        def scrape(line: str) -> None:
            match = METRIC_LINE.match(line.strip())
            if match:
                metrics[match["name"]] = float(match["value"])

        argv = command_line(ctx, source, "train", [])
        env = container_env(source, root, job.get("Environment"))
        ctx.log(f"running {image} train (source {source})")
        code = run_container_process(ctx, argv, env=env, cwd=source, on_line=scrape)
        if ctx.stop_requested.is_set():
            return JobOutcome()  # the service reports Stopped
        if code != 0:
            reason = _read_reason(root / "output" / "failure", f"exit code {code}; see the job's log")
            raise RunnerFailure(f"AlgorithmError: {reason}"[:MAX_REASON])
        archive = _tar_directory(root / "model", ctx.work_dir / "model.tar.gz")
        assert ctx.model_artifacts_uri is not None
        ctx.upload_file(archive, ctx.model_artifacts_uri)
        ctx.log(f"model artifacts written to {ctx.model_artifacts_uri}")
        now = time.time()
        return JobOutcome(
            final_metrics=[{"MetricName": k, "Value": v, "Timestamp": now} for k, v in sorted(metrics.items())]
        )

    def run_processing(self, ctx: RunnerContext) -> JobOutcome:
        job = ctx.description
        app = job["AppSpecification"]
        image = app["ImageUri"]
        require_image(ctx, image)
        source = source_dir(ctx, image)
        root = ctx.work_dir / "opt_ml"
        (root / "output").mkdir(parents=True, exist_ok=True)
        for item in job.get("ProcessingInputs", []):
            s3_input = item.get("S3Input")
            if not s3_input:
                continue
            dest = local_path(root, s3_input["LocalPath"])
            ctx.log(f"downloading input {item.get('InputName')} from {s3_input['S3Uri']} to {s3_input['LocalPath']}")
            if s3_input.get("S3DataType") == "ManifestFile":
                _download_manifest(ctx, s3_input["S3Uri"], dest)
            else:
                _download(ctx, s3_input["S3Uri"], dest)
        outputs = job.get("ProcessingOutputConfig", {}).get("Outputs", [])
        for output in outputs:
            local_path(root, output["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)
        entrypoint = app.get("ContainerEntrypoint") or []
        if not entrypoint:
            raise RunnerFailure("ClientError: the processing job has no ContainerEntrypoint")
        argv = command_line(ctx, source, entrypoint[0], [*entrypoint[1:], *(app.get("ContainerArguments") or [])])
        env = container_env(source, root, job.get("Environment"))
        ctx.log(f"running {image} {' '.join(entrypoint)} (source {source})")
        code = run_container_process(ctx, argv, env=env, cwd=source)
        if ctx.stop_requested.is_set():
            return JobOutcome()
        message = _read_reason(root / "output" / "message", "")
        if code != 0:
            raise RunnerFailure(f"AlgorithmError: {message or f'exit code {code}; see the job log'}"[:MAX_REASON])
        for output in outputs:
            s3 = output["S3Output"]
            for uri in _upload_tree(ctx, local_path(root, s3["LocalPath"]), s3["S3Uri"]):
                ctx.log(f"uploaded {uri}")
        return JobOutcome(exit_message=message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ping(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/ping", timeout=2) as response:  # noqa: S310 - loopback
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


class ProcessEndpointRunner:
    """Each endpoint deployment is the image's real ``serve`` server on a free 127.0.0.1 port,
    with the model extracted from ``ModelDataUrl`` and the SageMaker model's ``Environment``."""

    def start(self, ctx: RunnerContext) -> Deployment:
        if not ctx.models:
            raise RunnerFailure("the endpoint config has no model")
        # One server per variant: the service starts each variant of the config on its own.
        container = ctx.models[0]["ResolvedContainer"]
        image = container["Image"]
        require_image(ctx, image)
        source = source_dir(ctx, image)
        root = ctx.work_dir / "opt_ml"
        model_dir = root / "model"
        model_dir.mkdir(parents=True, exist_ok=True)
        data_url = container.get("ModelDataUrl")
        if data_url:
            archive = ctx.work_dir / "model.tar.gz"

            bucket, key = split_s3_uri(data_url)
            try:
                body = ctx.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
            except Exception as exc:  # noqa: BLE001 - AWS reports any download problem this way
                raise RunnerFailure(
                    f"Failed to download model data(bucket: {bucket}, key: {key}). Please ensure that there is "
                    f"an object located at the URL and that the role has s3:GetObject permissions. ({exc})"
                ) from exc
            archive.write_bytes(body)
            with tarfile.open(archive) as tar:
                tar.extractall(model_dir, filter="data")
        settings = _settings(ctx)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = container_env(source, root, container.get("Environment"))
        env.setdefault("SAGEMAKER_MODEL_SERVER_WORKERS", str(settings.get("serve_workers", 1)))
        env.update({"SAGEMAKER_BIND_TO_PORT": str(port), "MLOPS_SERVE_HOST": "127.0.0.1"})
        argv = command_line(ctx, source, "serve", [])
        log_path = ctx.work_dir / "serve.log"
        with log_path.open("ab") as log_file:
            child = ctx.processes.start(
                argv, cwd=source, env=env, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        ctx.log(f"serve of {image} starting on {url} (pid {child.pid}, log {log_path})")
        deadline = time.monotonic() + float(settings.get("serve_start_timeout_seconds", 90))
        while time.monotonic() < deadline:
            if child.exited():
                break
            if _ping(url):
                ctx.log(f"serve on {url} passed the ping health check")
                return Deployment(url=url, handle={"process": child, "log": str(log_path)})
            time.sleep(0.25)
        child.stop(STOP_GRACE_SECONDS)
        tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
        raise RunnerFailure(
            f"The primary container for production variant {ctx.description['ProductionVariants'][0]['VariantName']} "
            "did not pass the ping health check. Please check CloudWatch logs for this endpoint. "
            f"(local serve log {log_path}: {' | '.join(tail)})"[:MAX_REASON]
        )

    def stop(self, deployment: Deployment) -> None:
        handle = deployment.handle or {}
        child = handle.get("process")
        if child is not None:
            child.stop(STOP_GRACE_SECONDS)
