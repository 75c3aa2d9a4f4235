"""The experiment launcher, run with the real ``sagemaker`` SDK against a local AWS endpoint (moto)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import boto3
import pytest
from template_testing import TEMPLATE

# slow: importing the sagemaker SDK and starting moto take 10-20 s on 2 cores.
pytestmark = [pytest.mark.integration, pytest.mark.slow]

REGION = "eu-west-1"
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/proj/classifier:1.4.2"
ROLE = "arn:aws:iam::123456789012:role/proj-sagemaker-execution"


def _sdk_python() -> str:
    """The interpreter with the sagemaker SDK: this one in a model repo's own venv; in the platform repo
    the SDK lives in its own venv (it would downgrade shared packages), named by SAGEMAKER_SDK_PYTHON or
    found at <repo>/.venvs/sagemaker-sdk."""
    if os.environ.get("SAGEMAKER_SDK_PYTHON"):
        return os.environ["SAGEMAKER_SDK_PYTHON"]
    probe = subprocess.run([sys.executable, "-c", "import sagemaker"], capture_output=True)
    if probe.returncode == 0:
        return sys.executable
    for parent in TEMPLATE.parents:
        candidate = parent / ".venvs" / "sagemaker-sdk" / "bin" / "python"
        if candidate.exists():
            return str(candidate)
    pytest.fail(
        "no Python with the sagemaker SDK: `pip install -r requirements-experiment.txt`, or set "
        "SAGEMAKER_SDK_PYTHON to an interpreter that has it"
    )


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture
def aws_env(moto_endpoint) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=moto_endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
        HOME=env.get("HOME", "/tmp"),
    )
    return env


def test_launches_a_training_job_with_the_image_data_and_hyperparameters(aws_env, moto_endpoint):
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket="data-bucket", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(
        Bucket="data-bucket",
        Key="proj/classifier/training/train/train.csv",
        Body=(TEMPLATE / "data" / "train" / "train.csv").read_bytes(),
    )
    result = subprocess.run(
        [
            _sdk_python(),
            str(TEMPLATE / "scripts" / "launch_experiment.py"),
            "--image-uri",
            IMAGE,
            "--role-arn",
            ROLE,
            "--train",
            "s3://data-bucket/proj/classifier/training/train/",
            "--output",
            "s3://artifact-bucket/proj/classifier/experiments/",
            "--job-prefix",
            "exp-ds1",
            "-p",
            "n_estimators=300",
            "-p",
            "learning_rate=0.05",
        ],
        env=aws_env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    job_name = next(line.split(": ", 1)[1] for line in lines if line.startswith("training job: "))
    assert job_name.startswith("exp-ds1-")
    assert "status: Completed" in lines
    assert (
        f"model artifact: s3://artifact-bucket/proj/classifier/experiments/{job_name}/output/model.tar.gz"
        in lines
    )
    # moto completes jobs at once and reports one metric of its own; the script prints what there is.
    assert any(line.startswith("metric ") for line in lines)

    sm = boto3.client(
        "sagemaker",
        endpoint_url=moto_endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    job = sm.describe_training_job(TrainingJobName=job_name)
    assert job["AlgorithmSpecification"]["TrainingImage"] == IMAGE
    assert job["RoleArn"] == ROLE
    assert job["HyperParameters"] == {"n_estimators": "300", "learning_rate": "0.05"}
    channel = job["InputDataConfig"][0]
    assert channel["ChannelName"] == "train"
    assert (
        channel["DataSource"]["S3DataSource"]["S3Uri"] == "s3://data-bucket/proj/classifier/training/train/"
    )


def test_refuses_a_malformed_hyperparameter(aws_env):
    result = subprocess.run(
        [
            _sdk_python(),
            str(TEMPLATE / "scripts" / "launch_experiment.py"),
            "--image-uri",
            IMAGE,
            "--role-arn",
            ROLE,
            "--train",
            "s3://b/t/",
            "--output",
            "s3://b/o/",
            "-p",
            "n_estimators",
        ],
        env=aws_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "'n_estimators': use NAME=VALUE" in result.stderr
