"""What actually happens inside a training/processing job or behind an endpoint: the runner seam.

The service owns AWS's side (statuses, timestamps, input checks, injected failures, errors); a
runner only does the work a container would do. ``SimulatedJobRunner`` and
``SimulatedEndpointRunner`` are the defaults; issue 6 plugs in runners that execute the model
template's real ``train``/``evaluate`` entry points and start its ``serve`` server, selected with
``--job-runner module:Class`` / ``--endpoint-runner module:Class``.

Runner methods are called from worker threads, one call per job or deployment; they may block for
as long as the work takes. Raise ``RunnerFailure(reason)`` to fail the job or deployment with
that ``FailureReason``; any other exception fails it too, with the exception as reason.

A runner that starts processes starts them with ``ctx.processes.start(...)``: the server then stops
them all when it shuts down or resets, and refuses new ones while it does.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import signal
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from local_aws.child_processes import has_exited
from local_aws.scenario import rule_matches


class RunnerFailure(Exception):
    """The job or deployment fails with this reason (becomes FailureReason)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise RunnerFailure(f"ClientError: {uri!r} is not an S3 URI")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


class ChildProcess:
    """A process a runner started (a container's main process), leader of its own process group.

    Only this class reaps it, and it signals the group only while the leader is not yet reaped: an
    unreaped pid cannot be reused, so the group id still names this process's group."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process
        self.pid = process.pid
        self._lock = threading.Lock()

    def exited(self) -> bool:
        with self._lock:
            return self.process.returncode is not None or has_exited(self.pid)

    def signal_group(self, sig: int) -> None:
        with self._lock:
            if self.process.returncode is None:
                try:
                    os.killpg(self.pid, sig)
                except ProcessLookupError:
                    pass

    def reap(self) -> int:
        """End the container: SIGKILL what is left of its group, then reap the leader. As in Docker,
        processes the main process left behind do not outlive it."""
        self.signal_group(signal.SIGKILL)
        with self._lock:
            return self.process.wait()

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the main process to exit (None on timeout), then end the container (reap)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.exited():
            if deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(0.05)
        return self.reap()

    def stop(self, grace: float = 10.0) -> int:
        """SIGTERM the group (SageMaker stops a container the same way), SIGKILL after ``grace`` s."""
        self.signal_group(signal.SIGTERM)
        self.wait(grace)
        return self.reap()


class ChildProcesses:
    """Every process the runners of one local SageMaker started, so that shutdown and reset stop all
    of them, including those of jobs and deployments whose worker thread is busy elsewhere.

    Each process leads its own process group (``process_group=0``: stopping a job stops the
    children of its entry point) but stays in the server's session: the launcher starts the server
    as a session leader and, when it stops it, kills whatever is left in that session, so these
    processes do not outlive a server that was killed before it could stop them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._children: list[ChildProcess] = []
        self._closed = False

    def start(self, argv: list[str], **popen_kwargs: Any) -> ChildProcess:
        """``subprocess.Popen(argv, **popen_kwargs)`` in a new process group, tracked; refused (a
        ``RunnerFailure``) once a shutdown or reset has begun."""
        with self._lock:
            if self._closed:
                raise RunnerFailure("InternalServerError: the local SageMaker is shutting down")
            process = subprocess.Popen(argv, process_group=0, **popen_kwargs)  # noqa: S603 - runner's own
            child = ChildProcess(process)
            self._children = [c for c in self._children if c.process.returncode is None]
            self._children.append(child)
        return child

    def stop_all(self, grace: float = 5.0) -> None:
        """Refuse new processes, SIGTERM every group at once, SIGKILL them after ``grace`` s."""
        with self._lock:
            self._closed = True
            children, self._children = self._children, []
        for child in children:
            child.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for child in children:
            child.wait(max(0.0, deadline - time.monotonic()))
        for child in children:
            child.reap()

    def reopen(self) -> None:
        """Accept new processes again (after a reset)."""
        with self._lock:
            self._closed = False


@dataclass
class RunnerContext:
    """Everything a runner may use: AWS clients bound to this local AWS, the scenario, a work dir."""

    kind: str  # "training" | "processing" | "endpoint"
    name: str
    region: str
    description: dict[str, Any]  # the Describe* response at start (for endpoints: the endpoint config)
    scenario: dict[str, Any]
    work_dir: Path
    client: Callable[[str], Any]  # client("s3") -> boto3 client for the local endpoint
    log: Callable[[str], None]  # appends one line to the job's CloudWatch log stream
    stop_requested: threading.Event = field(default_factory=threading.Event)
    model_artifacts_uri: str | None = None  # training: where model.tar.gz must be written
    models: list[dict[str, Any]] = field(default_factory=list)  # endpoint: DescribeModel of each variant
    processes: ChildProcesses = field(default_factory=ChildProcesses)  # the server's: start processes here

    def put_bytes(self, uri: str, data: bytes) -> None:
        bucket, key = split_s3_uri(uri)
        self.client("s3").put_object(Bucket=bucket, Key=key, Body=data)

    def upload_file(self, path: Path, uri: str) -> None:
        self.put_bytes(uri, Path(path).read_bytes())

    def download_prefix(self, uri: str, dest: Path) -> list[Path]:
        """Copy every object under an S3 prefix into dest (as SageMaker fills /opt/ml/input)."""
        bucket, prefix = split_s3_uri(uri)
        s3 = self.client("s3")
        written = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                relative = obj["Key"][len(prefix) :].lstrip("/") or Path(obj["Key"]).name
                target = Path(dest) / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
                written.append(target)
        return written


@dataclass
class JobOutcome:
    exit_message: str | None = None
    final_metrics: list[dict[str, Any]] = field(default_factory=list)  # FinalMetricDataList


@dataclass
class Deployment:
    """A running endpoint variant: ``url`` receives ``POST /invocations`` (None: canned answers)."""

    url: str | None = None
    handle: Any = None


class JobRunner(Protocol):
    def run_training(self, ctx: RunnerContext) -> JobOutcome: ...

    def run_processing(self, ctx: RunnerContext) -> JobOutcome: ...


class EndpointRunner(Protocol):
    def start(self, ctx: RunnerContext) -> Deployment: ...

    def stop(self, deployment: Deployment) -> None: ...


class SimulatedJobRunner:
    """Writes the artifacts a real job would: model.tar.gz for training, configured files for
    processing (default: evaluation.json with the agreed format)."""

    def run_training(self, ctx: RunnerContext) -> JobOutcome:
        job = ctx.description
        ctx.log(f"simulated training of {ctx.name} with hyperparameters {job.get('HyperParameters', {})}")
        manifest = {
            "training_job_name": ctx.name,
            "image": job.get("AlgorithmSpecification", {}).get("TrainingImage"),
            "hyperparameters": job.get("HyperParameters", {}),
            "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        assert ctx.model_artifacts_uri is not None
        ctx.put_bytes(ctx.model_artifacts_uri, _tar_gz({"model.json": json.dumps(manifest).encode()}))
        ctx.log(f"model artifacts written to {ctx.model_artifacts_uri}")
        return JobOutcome(final_metrics=[{"MetricName": "train:loss", "Value": 0.1, "Timestamp": time.time()}])

    def run_processing(self, ctx: RunnerContext) -> JobOutcome:
        job = ctx.description
        files = processing_files(ctx.scenario, job)
        for output in job.get("ProcessingOutputConfig", {}).get("Outputs", []):
            base = output.get("S3Output", {}).get("S3Uri")
            if not base:
                continue
            for filename, content in files.items():
                data = content if isinstance(content, str) else json.dumps(content)
                uri = f"{base.rstrip('/')}/{filename}"
                ctx.put_bytes(uri, data.encode())
                ctx.log(f"wrote {uri}")
        return JobOutcome(exit_message="")


def processing_files(scenario: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    """Files a simulated processing job writes: the first matching rule with 'files', else the default."""
    section = scenario["processing"]
    for rule in section.get("rules", []):
        if "files" in rule and rule_matches(
            rule["when"],
            name=job["ProcessingJobName"],
            image=job.get("AppSpecification", {}).get("ImageUri"),
            environment=job.get("Environment"),
        ):
            return rule["files"]
    return section["files"]


class SimulatedEndpointRunner:
    """No server: InvokeEndpoint answers from the scenario (``endpoints.invoke``)."""

    def start(self, ctx: RunnerContext) -> Deployment:
        ctx.log(f"simulated deployment of endpoint config {ctx.description['EndpointConfigName']}")
        return Deployment(url=None)

    def stop(self, deployment: Deployment) -> None:
        return None


def _tar_gz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = int(time.time())
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def load_runner(spec: str | None, default: type) -> Any:
    """Instantiate ``module:Class`` (no arguments), or the default runner."""
    if not spec:
        return default()
    module_name, _, class_name = spec.partition(":")
    if not class_name:
        raise ValueError(f"runner {spec!r} must be written module:Class")
    return getattr(importlib.import_module(module_name), class_name)()
