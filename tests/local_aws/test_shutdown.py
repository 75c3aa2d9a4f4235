"""Stopping the local AWS stops every process its SageMaker started: training, processing and
endpoint ``serve`` processes (and their children), whether the server shuts down cleanly or is
killed outright; a reset stops them too and the server keeps working.

The model source is a stand-in whose entry points record their pid and a child's pid and then wait
(``serve`` answers the ping health check), run by the real process runners."""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from local_aws_helpers import IMAGE, ROLE, make_config, wait_for
from process_helpers import running

from local_aws import LocalAws
from local_aws.roles import ensure_service_role

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RUNNERS = "local_aws.sagemaker.process_runners"
SLEEPY = textwrap.dedent(
    """
    import http.server, json, os, signal, subprocess, sys, time
    from pathlib import Path

    def _record(kind):
        # A child in the entry point's process group, as a real one may start workers.
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        target = Path(os.environ["SLEEPY_PID_DIR"]) / f"{kind}.json"
        target.with_suffix(".tmp").write_text(json.dumps({"main": os.getpid(), "child": child.pid}))
        target.with_suffix(".tmp").replace(target)

    def train():
        root = Path(os.environ["MLOPS_ML_ROOT"])
        hyperparameters = json.loads((root / "input/config/hyperparameters.json").read_text())
        if hyperparameters.get("ignore_sigterm") == "yes":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # only SIGKILL stops it
        _record(hyperparameters.get("label", "train"))
        time.sleep(300)

    def evaluate():
        _record("evaluate")
        time.sleep(300)

    class Ping(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    def serve():
        server = http.server.HTTPServer(("127.0.0.1", int(os.environ["SAGEMAKER_BIND_TO_PORT"])), Ping)
        _record("serve")
        server.serve_forever()
    """
)


@pytest.fixture
def sleepy_source(tmp_path: Path) -> Path:
    source = tmp_path / "sleepy-model"
    (source / "src").mkdir(parents=True)
    (source / "src" / "sleepy.py").write_text(SLEEPY)
    (source / "pyproject.toml").write_text(
        '[project]\nname = "sleepy"\nversion = "0"\n\n[project.scripts]\n'
        'train = "sleepy:train"\nevaluate = "sleepy:evaluate"\nserve = "sleepy:serve"\n'
    )
    return source


@pytest.fixture
def pid_dir(tmp_path: Path) -> Path:
    path = tmp_path / "pids"
    path.mkdir()
    return path


@pytest.fixture
def sleepy_aws(tmp_path: Path, sleepy_source: Path):
    server = LocalAws(
        state_dir=tmp_path / "state",
        scenario={
            "training": {"delay_seconds": 0.1},
            "processing": {"delay_seconds": 0.1},
            "endpoints": {"create_delay_seconds": 0.1, "update_delay_seconds": 0.1},
            "runner": {"default_model_source": str(sleepy_source)},
        },
        job_runner=f"{RUNNERS}:ProcessJobRunner",
        endpoint_runner=f"{RUNNERS}:ProcessEndpointRunner",
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def clients(aws: LocalAws) -> tuple[Any, Any, Any]:
    session = boto3.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto's fixed local credentials
        region_name="us-east-1",
    )
    sm, s3, ecr = (session.client(service, endpoint_url=aws.url) for service in ("sagemaker", "s3", "ecr"))
    ensure_service_role(session.client("iam", endpoint_url=aws.url), ROLE.rsplit("/", 1)[-1])
    repository, tag = IMAGE.split("/", 1)[1].rsplit(":", 1)
    ecr.create_repository(repositoryName=repository)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"digest": "sha256:" + "0" * 64},
        "layers": [],
    }
    ecr.put_image(repositoryName=repository, imageManifest=json.dumps(manifest), imageTag=tag)
    s3.create_bucket(Bucket="artifacts")
    return sm, s3, ecr


def start_training(sm: Any, name: str, pid_dir: Path, **hyperparameters: str) -> None:
    sm.create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        RoleArn=ROLE,
        OutputDataConfig={"S3OutputPath": "s3://artifacts/out"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
        HyperParameters={"label": name, **hyperparameters},
        Environment={"SLEEPY_PID_DIR": str(pid_dir)},
    )


def start_everything(sm: Any, pid_dir: Path) -> dict[str, dict[str, int]]:
    """A training job (ignoring SIGTERM), a processing job and an endpoint, all running."""
    start_training(sm, "train", pid_dir, ignore_sigterm="yes")
    sm.create_processing_job(
        ProcessingJobName="evaluate",
        RoleArn=ROLE,
        AppSpecification={"ImageUri": IMAGE, "ContainerEntrypoint": ["evaluate"]},
        ProcessingResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}},
        Environment={"SLEEPY_PID_DIR": str(pid_dir)},
    )
    sm.create_model(
        ModelName="sleepy",
        PrimaryContainer={"Image": IMAGE, "Environment": {"SLEEPY_PID_DIR": str(pid_dir)}},
        ExecutionRoleArn=ROLE,
    )
    make_config(sm, "sleepy", "sleepy")
    sm.create_endpoint(EndpointName="sleepy", EndpointConfigName="sleepy")
    endpoint = wait_for(lambda: sm.describe_endpoint(EndpointName="sleepy"), "EndpointStatus", {"Creating"}, 60)
    assert endpoint["EndpointStatus"] == "InService", endpoint.get("FailureReason")
    pids = {kind: recorded(pid_dir, kind) for kind in ("train", "evaluate", "serve")}
    assert sm.describe_training_job(TrainingJobName="train")["TrainingJobStatus"] == "InProgress"
    assert sm.describe_processing_job(ProcessingJobName="evaluate")["ProcessingJobStatus"] == "InProgress"
    return pids


def recorded(pid_dir: Path, kind: str, timeout: float = 30) -> dict[str, int]:
    path = pid_dir / f"{kind}.json"
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{kind} never started"
        time.sleep(0.05)
    pids = json.loads(path.read_text())
    assert all(running(pid) for pid in pids.values()), pids
    return pids


def survivors(pids: dict[str, dict[str, int]], timeout: float = 5) -> dict[str, int]:
    """The recorded processes still running once ``timeout`` s have passed (signals take a moment)."""
    flat = {f"{kind} {role}": pid for kind, entry in pids.items() for role, pid in entry.items()}
    deadline = time.monotonic() + timeout
    while True:
        alive = {name: pid for name, pid in flat.items() if running(pid)}
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def test_stop_stops_every_job_and_endpoint_process(sleepy_aws, pid_dir):
    aws = sleepy_aws
    sm, _, _ = clients(aws)
    pids = start_everything(sm, pid_dir)
    started = time.monotonic()
    aws.stop()
    # The training ignores SIGTERM: the shutdown waits its grace period, then SIGKILLs the group.
    assert time.monotonic() - started < 20
    assert survivors(pids) == {}
    log = (Path(aws.state_dir) / "local_aws.log").read_text()
    assert "local AWS stopped" in log


def test_processes_do_not_outlive_a_killed_server(sleepy_aws, pid_dir):
    aws = sleepy_aws
    sm, _, _ = clients(aws)
    pids = start_everything(sm, pid_dir)
    server = aws._process
    os.kill(server.pid, signal.SIGKILL)  # no chance to stop anything itself
    deadline = time.monotonic() + 10
    while running(server.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(running(pid) for entry in pids.values() for pid in entry.values())  # orphans, for now
    aws.stop()
    assert survivors(pids) == {}


def test_stop_training_job_and_reset_stop_the_processes_and_the_server_goes_on(sleepy_aws, pid_dir):
    aws = sleepy_aws
    sm, _, _ = clients(aws)
    start_training(sm, "stopped", pid_dir)
    stopped = recorded(pid_dir, "stopped")
    sm.stop_training_job(TrainingJobName="stopped")
    done = wait_for(
        lambda: sm.describe_training_job(TrainingJobName="stopped"), "TrainingJobStatus", {"InProgress", "Stopping"}
    )
    assert done["TrainingJobStatus"] == "Stopped"
    assert survivors({"stopped": stopped}) == {}  # the entry point's child too: its whole group

    start_training(sm, "before-reset", pid_dir)
    before = recorded(pid_dir, "before-reset")
    aws.reset()
    assert survivors({"before-reset": before}) == {}

    sm, _, _ = clients(aws)  # a fresh server: no ECR repository, no bucket
    start_training(sm, "after-reset", pid_dir)
    after = recorded(pid_dir, "after-reset")  # processes start again after a reset
    assert sm.describe_training_job(TrainingJobName="after-reset")["TrainingJobStatus"] == "InProgress"
    aws.stop()
    assert survivors({"after-reset": after}) == {}
