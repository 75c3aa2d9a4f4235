"""The process runners: the local SageMaker runs the model template's real train / evaluate / serve
entry points on data in the local S3, through boto3 only."""

from __future__ import annotations

import io
import json
import tarfile
import time
from pathlib import Path

import boto3
import pytest

from local_aws import LocalAws
from local_aws.roles import ensure_service_role

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "model_template" / "data"
ACCOUNT, REGION = "123456789012", "us-east-1"
RUNNERS = "local_aws.sagemaker.process_runners"
REPOSITORY = "runner-test/classifier"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{REPOSITORY}"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/sm"
FAST = {
    "training": {"delay_seconds": 0.1},
    "processing": {"delay_seconds": 0.1},
    "endpoints": {"create_delay_seconds": 0.1, "update_delay_seconds": 0.1},
}


@pytest.fixture(scope="module")
def aws(tmp_path_factory, monkeypatch_module):
    with LocalAws(
        scenario=FAST, job_runner=f"{RUNNERS}:ProcessJobRunner", endpoint_runner=f"{RUNNERS}:ProcessEndpointRunner"
    ) as server:
        for key, value in server.env.items():
            monkeypatch_module.setenv(key, value)
        ensure_service_role(boto3.client("iam"), ROLE.rsplit("/", 1)[-1])  # SageMaker assumes it
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="data")
        s3.create_bucket(Bucket="artifacts")
        for channel in ("train", "test"):
            s3.upload_file(str(DATA / channel / f"{channel}.csv"), "data", f"m/{channel}/{channel}.csv")
        ecr = boto3.client("ecr")
        ecr.create_repository(repositoryName=REPOSITORY)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"digest": "sha256:" + "0" * 64},
                "layers": [],
            }
        )
        ecr.put_image(repositoryName=REPOSITORY, imageManifest=manifest, imageTag="1.0.0")
        yield server


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def wait(describe, key, until=("Completed", "Failed", "Stopped", "InService"), timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = describe()
        if found[key] in until:
            return found
        time.sleep(0.5)
    raise AssertionError(f"still {found[key]} after {timeout} s")


def training_request(name, tag="1.0.0", **hyperparameters):
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": f"{IMAGE}:{tag}", "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://data/m/train/"}},
            }
        ],
        "OutputDataConfig": {"S3OutputPath": "s3://artifacts/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        "HyperParameters": {k: str(v) for k, v in hyperparameters.items()},
    }


def test_train_evaluate_serve_for_real(aws):
    sm, s3 = boto3.client("sagemaker"), boto3.client("s3")
    sm.create_training_job(**training_request("rt-ok", n_estimators=30))
    job = wait(lambda: sm.describe_training_job(TrainingJobName="rt-ok"), "TrainingJobStatus")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    metrics = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    assert 0.5 < metrics["validation:f1"] <= 1.0
    artifact = job["ModelArtifacts"]["S3ModelArtifacts"]
    body = s3.get_object(Bucket="artifacts", Key=artifact.removeprefix("s3://artifacts/"))["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        assert {"model.joblib", "metadata.json"} <= set(archive.getnames())
    hyper = json.loads(tarfile.open(fileobj=io.BytesIO(body)).extractfile("metadata.json").read())["hyperparameters"]
    assert hyper["n_estimators"] == 30  # hyperparameters.json reached the real train

    sm.create_processing_job(
        ProcessingJobName="rt-ok",
        RoleArn=ROLE,
        AppSpecification={"ImageUri": f"{IMAGE}:1.0.0", "ContainerEntrypoint": ["evaluate"]},
        ProcessingResources={
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 10}
        },
        ProcessingInputs=[
            {
                "InputName": "model",
                "S3Input": {
                    "S3Uri": artifact,
                    "LocalPath": "/opt/ml/processing/model",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            },
            {
                "InputName": "test",
                "S3Input": {
                    "S3Uri": "s3://data/m/test/",
                    "LocalPath": "/opt/ml/processing/test",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            },
        ],
        ProcessingOutputConfig={
            "Outputs": [
                {
                    "OutputName": "evaluation",
                    "S3Output": {
                        "S3Uri": "s3://artifacts/eval",
                        "LocalPath": "/opt/ml/processing/evaluation",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
    )
    done = wait(lambda: sm.describe_processing_job(ProcessingJobName="rt-ok"), "ProcessingJobStatus")
    assert done["ProcessingJobStatus"] == "Completed", done.get("FailureReason")
    evaluation = json.loads(s3.get_object(Bucket="artifacts", Key="eval/evaluation.json")["Body"].read())
    assert evaluation["problem_type"] == "classification" and evaluation["samples"] > 100
    assert set(evaluation["metrics"]) >= {"f1", "precision", "recall"}
    assert s3.head_object(Bucket="artifacts", Key="eval/confusion_matrix.png")["ContentLength"] > 1000

    manifest = {"MLOPS_MODEL_NAME": "classifier", "MLOPS_MODEL_VERSION": "1.0.0+r0"}
    sm.create_model(
        ModelName="rt-ok",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": f"{IMAGE}:1.0.0", "ModelDataUrl": artifact, "Environment": manifest},
    )
    sm.create_endpoint_config(
        EndpointConfigName="rt-ok",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "rt-ok",
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 1,
            }
        ],
    )
    sm.create_endpoint(EndpointName="rt-ep", EndpointConfigName="rt-ok")
    endpoint = wait(lambda: sm.describe_endpoint(EndpointName="rt-ep"), "EndpointStatus", ("InService", "Failed"))
    assert endpoint["EndpointStatus"] == "InService", endpoint.get("FailureReason")
    row = (DATA / "test" / "test.csv").read_text().splitlines()[1].rsplit(",", 1)[0]
    answer = boto3.client("sagemaker-runtime").invoke_endpoint(
        EndpointName="rt-ep", ContentType="text/csv", Accept="application/json", Body=row
    )
    document = json.loads(answer["Body"].read())
    assert document["predictions"][0]["label"] in {"benign", "malicious"}
    assert document["model"]["model_version"] == "1.0.0+r0" and document["model"]["model_name"] == "classifier"
    assert "model_version=1.0.0+r0" in answer["CustomAttributes"]
    sm.delete_endpoint(EndpointName="rt-ep")


def test_failing_training_reports_the_templates_reason(aws):
    sm = boto3.client("sagemaker")
    sm.create_training_job(**training_request("rt-fail", fail_training="true"))
    job = wait(lambda: sm.describe_training_job(TrainingJobName="rt-fail"), "TrainingJobStatus")
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("AlgorithmError: ") and "fail_training" in job["FailureReason"]


def test_an_image_tag_missing_from_ecr_cannot_start(aws):
    sm = boto3.client("sagemaker")
    sm.create_training_job(**training_request("rt-noimage", tag="9.9.9"))
    job = wait(lambda: sm.describe_training_job(TrainingJobName="rt-noimage"), "TrainingJobStatus")
    assert job["TrainingJobStatus"] == "Failed"
    assert "CannotStartContainerError" in job["FailureReason"] and ":9.9.9" in job["FailureReason"]
