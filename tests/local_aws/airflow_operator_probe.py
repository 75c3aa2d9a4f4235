"""Runs Airflow's real SageMaker operators and hook against the local AWS; prints JSON results.

Executed by test_airflow_operators.py with an Airflow virtualenv's Python (not collected by pytest),
writing the results to the file named by its argument (Airflow logs to stdout):
``AWS_ENDPOINT_URL`` etc. come from the environment, exactly as in a DAG run.
"""

from __future__ import annotations

import json
import sys

import boto3
from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook
from airflow.providers.amazon.aws.operators.sagemaker import (
    SageMakerEndpointOperator,
    SageMakerProcessingOperator,
    SageMakerRegisterModelVersionOperator,
    SageMakerTrainingOperator,
)

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/proj/model:1.0.0"
ROLE = "arn:aws:iam::123456789012:role/sagemaker-execution"
FAST = {"aws_conn_id": None, "check_interval": 1}
results: dict[str, object] = {}


def training(name: str) -> dict:
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://probe-data/train/"}},
            }
        ],
        "OutputDataConfig": {"S3OutputPath": "s3://probe-artifacts/runs"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        "HyperParameters": {"epochs": "1"},
    }


def endpoint(version: str) -> dict:
    return {
        "Model": {
            "ModelName": f"probe-{version}",
            "PrimaryContainer": {"Image": IMAGE, "ModelDataUrl": "s3://probe-artifacts/runs/m.tar.gz"},
            "ExecutionRoleArn": ROLE,
        },
        "EndpointConfig": {
            "EndpointConfigName": f"probe-{version}",
            "ProductionVariants": [
                {
                    "VariantName": "AllTraffic",
                    "ModelName": f"probe-{version}",
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
        },
        "Endpoint": {"EndpointName": "probe-ep", "EndpointConfigName": f"probe-{version}"},
    }


def main() -> None:
    s3 = boto3.client("s3")
    for bucket in ("probe-data", "probe-artifacts"):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket="probe-data", Key="train/a.csv", Body=b"1\n")

    out = SageMakerTrainingOperator(task_id="t", config=training("probe-train"), print_log=False, **FAST).execute({})
    results["training"] = [
        out["Training"]["TrainingJobStatus"],
        out["Training"]["ModelArtifacts"]["S3ModelArtifacts"],
    ]
    try:
        SageMakerTrainingOperator(task_id="t2", config=training("probe-doomed"), print_log=False, **FAST).execute({})
        results["failed_training"] = "no error"
    except Exception as error:  # noqa: BLE001 - the probe reports whatever Airflow raised
        results["failed_training"] = str(error)

    processing = {
        "ProcessingJobName": "probe-eval",
        "RoleArn": ROLE,
        "AppSpecification": {"ImageUri": IMAGE},
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 10}
        },
        "ProcessingInputs": [
            {
                "InputName": "model",
                "S3Input": {
                    "S3Uri": results["training"][1],
                    "LocalPath": "/opt/ml/processing/model",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            }
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "evaluation",
                    "S3Output": {
                        "S3Uri": "s3://probe-artifacts/eval",
                        "LocalPath": "/opt/ml/processing/evaluation",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }
    out = SageMakerProcessingOperator(task_id="p", config=processing, **FAST).execute({})
    evaluation = json.loads(s3.get_object(Bucket="probe-artifacts", Key="eval/evaluation.json")["Body"].read())
    results["processing"] = [out["Processing"]["ProcessingJobStatus"], evaluation["metrics"]["f1"]]

    statuses = []
    for task, version, operation in (("e1", "v1", "create"), ("e2", "v2", "create"), ("e3", "v3", "update")):
        out = SageMakerEndpointOperator(task_id=task, config=endpoint(version), operation=operation, **FAST).execute({})
        statuses.append([out["Endpoint"]["EndpointStatus"], out["Endpoint"]["EndpointConfigName"]])
    results["endpoint"] = statuses

    hook = SageMakerHook(aws_conn_id=None)
    results["group_created"] = [
        hook.create_model_package_group("probe-group"),
        hook.create_model_package_group("probe-group"),
    ]
    results["package"] = SageMakerRegisterModelVersionOperator(
        task_id="r",
        image_uri=IMAGE,
        model_url=results["training"][1],
        package_group_name="probe-group",
        aws_conn_id=None,
    ).execute({})
    results["processing_jobs_named"] = hook.count_processing_jobs_by_name("probe-eval")
    with open(sys.argv[1], "w") as out_file:
        json.dump(results, out_file)


if __name__ == "__main__":
    main()
