"""Custom job and endpoint runners (the seam issue 6 uses for real processes), through boto3."""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from local_aws_helpers import IMAGE, ROLE, training_request, wait_for
from process_helpers import running

from local_aws import LocalAws
from local_aws.roles import ensure_service_role

pytestmark = pytest.mark.integration
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def custom():
    with LocalAws(
        scenario={
            "training": {"delay_seconds": 0.1},
            "endpoints": {"create_delay_seconds": 0.1, "update_delay_seconds": 0.1},
        },
        job_runner="local_aws_test_runners:CountingJobRunner",
        endpoint_runner="local_aws_test_runners:EnvEchoEndpointRunner",
        extra_env={"PYTHONPATH": str(HERE)},
    ) as aws:
        yield aws


@pytest.fixture
def clients(custom, monkeypatch):
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    for key, value in custom.env.items():
        monkeypatch.setenv(key, value)
    ensure_service_role(boto3.client("iam"), ROLE.rsplit("/", 1)[-1])
    return boto3.client("sagemaker"), boto3.client("s3"), boto3.client("sagemaker-runtime")


def test_custom_job_runner_reads_inputs_and_writes_artifacts(clients):
    sm, s3, _ = clients
    buckets = {"data": "seam-data", "artifacts": "seam-artifacts"}
    for bucket in buckets.values():
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket="seam-data", Key="proj/model/training/a.csv", Body=b"1\n2\n3\n")
    s3.put_object(Bucket="seam-data", Key="proj/model/training/b.csv", Body=b"4\n")

    sm.create_training_job(**training_request("seam-ok", buckets))
    done = wait_for(lambda: sm.describe_training_job(TrainingJobName="seam-ok"), "TrainingJobStatus", {"InProgress"})
    assert done["TrainingJobStatus"] == "Completed"
    key = done["ModelArtifacts"]["S3ModelArtifacts"].removeprefix("s3://seam-artifacts/")
    with tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket="seam-artifacts", Key=key)["Body"].read())) as tar:
        assert json.load(tar.extractfile("model.json")) == {"rows": 4}

    sm.create_training_job(**training_request("seam-bad", buckets, HyperParameters={"explode": "yes"}))
    failed = wait_for(lambda: sm.describe_training_job(TrainingJobName="seam-bad"), "TrainingJobStatus", {"InProgress"})
    assert failed["FailureReason"] == "AlgorithmError: exploded on purpose"


def test_custom_endpoint_runner_serves_invocations_and_failed_start_rolls_back(clients, custom):
    sm, _, runtime = clients
    for version, image in (("v1", IMAGE), ("v2", IMAGE.replace("1.2.3", "2.0.0")), ("bad", "repo/m:broken")):
        sm.create_model(
            ModelName=f"seam-{version}",
            PrimaryContainer={"Image": image, "Environment": {"MLOPS_MODEL_VERSION": version}},
            ExecutionRoleArn=ROLE,
        )
        sm.create_endpoint_config(
            EndpointConfigName=f"seam-{version}",
            ProductionVariants=[
                {"VariantName": "AllTraffic", "ModelName": f"seam-{version}", "InitialInstanceCount": 1}
            ],
        )

    def invoke():
        return json.loads(
            runtime.invoke_endpoint(EndpointName="seam", Body=b"{}", ContentType="application/json")["Body"].read()
        )

    def settle():
        return wait_for(
            lambda: sm.describe_endpoint(EndpointName="seam"),
            "EndpointStatus",
            {"Creating", "Updating", "RollingBack"},
        )

    sm.create_endpoint(EndpointName="seam", EndpointConfigName="seam-v1")
    settle()
    assert invoke() == {"MLOPS_MODEL_VERSION": "v1"}

    sm.update_endpoint(EndpointName="seam", EndpointConfigName="seam-v2")
    settle()
    assert invoke() == {"MLOPS_MODEL_VERSION": "v2"}

    sm.update_endpoint(EndpointName="seam", EndpointConfigName="seam-bad")
    after = settle()
    assert after["EndpointConfigName"] == "seam-v2"
    assert after["FailureReason"] == "container exited with code 1 during start-up"
    assert invoke() == {"MLOPS_MODEL_VERSION": "v2"}  # the previous version still serves

    sm.delete_endpoint(EndpointName="seam")
    with pytest.raises(ClientError):
        invoke()


def test_stop_kills_processes_a_runner_leaked(tmp_path):
    with LocalAws(
        state_dir=tmp_path,
        scenario={"endpoints": {"create_delay_seconds": 0.1}},
        endpoint_runner="local_aws_test_runners:LeakyEndpointRunner",
        extra_env={"PYTHONPATH": str(HERE)},
    ) as aws:
        sm = boto3.Session(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - moto's fixed local credentials
            region_name="us-east-1",
        ).client("sagemaker", endpoint_url=aws.url)
        sm.create_model(ModelName="leak", PrimaryContainer={"Image": IMAGE})
        sm.create_endpoint_config(
            EndpointConfigName="leak", ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": "leak"}]
        )
        sm.create_endpoint(EndpointName="leak", EndpointConfigName="leak")
        wait_for(lambda: sm.describe_endpoint(EndpointName="leak"), "EndpointStatus", {"Creating"})
        pid = int((tmp_path / "sagemaker" / "endpoints" / "leaky.pid").read_text())
        assert running(pid)
    deadline = time.monotonic() + 5
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(pid)
