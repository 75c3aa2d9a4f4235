"""Request builders and a polling helper shared by the local AWS tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

ROLE = "arn:aws:iam::123456789012:role/sagemaker-execution"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/proj/model:1.2.3"


def training_request(name: str, buckets: dict[str, str], **overrides: Any) -> dict[str, Any]:
    request = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": f"s3://{buckets['data']}/proj/model/training/",
                    }
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{buckets['artifacts']}/proj/model/runs"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "HyperParameters": {"epochs": "3"},
    }
    request.update(overrides)
    return request


def wait_for(
    describe: Callable[[], dict[str, Any]], key: str, pending: set[str], timeout: float = 15
) -> dict[str, Any]:
    """Poll like Airflow's SageMakerHook.check_status; returns the first non-pending description."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        description = describe()
        if description[key] not in pending:
            return description
        time.sleep(0.05)
    raise AssertionError(f"{key} still in {pending} after {timeout}s")


def make_model(sm: Any, name: str, image: str = IMAGE) -> None:
    sm.create_model(
        ModelName=name,
        PrimaryContainer={"Image": image, "Environment": {"MLOPS_MODEL_VERSION": "1.2.3"}},
        ExecutionRoleArn=ROLE,
    )


def make_config(sm: Any, name: str, model: str) -> None:
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": model,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.t2.medium",
            }
        ],
    )
