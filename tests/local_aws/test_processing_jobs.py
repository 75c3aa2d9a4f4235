"""Processing jobs: transitions, the evaluation files they write, failures, the list Airflow counts with."""

from __future__ import annotations

import json

import pytest
from local_aws_helpers import IMAGE, ROLE, wait_for

from local_aws.scenario import DEFAULT_EVALUATION

pytestmark = pytest.mark.integration
PENDING = {"InProgress", "Stopping"}


def processing_request(name, buckets, **overrides):
    request = {
        "ProcessingJobName": name,
        "RoleArn": ROLE,
        "AppSpecification": {"ImageUri": IMAGE, "ContainerEntrypoint": ["evaluate"]},
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 10}
        },
        "ProcessingInputs": [
            {
                "InputName": "data",
                "S3Input": {
                    "S3Uri": f"s3://{buckets['data']}/proj/model/training/",
                    "LocalPath": "/opt/ml/processing/input/data",
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
                        "S3Uri": f"s3://{buckets['artifacts']}/runs/{name}/evaluation",
                        "LocalPath": "/opt/ml/processing/evaluation",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        "Environment": {"PROBLEM_TYPE": "classification"},
    }
    request.update(overrides)
    return request


def read_json(s3, bucket, key):
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def test_job_completes_and_writes_default_evaluation(sm, s3, buckets, unique):
    name = unique("eval-ok")
    sm.create_processing_job(**processing_request(name, buckets))
    assert sm.describe_processing_job(ProcessingJobName=name)["ProcessingJobStatus"] == "InProgress"

    done = wait_for(lambda: sm.describe_processing_job(ProcessingJobName=name), "ProcessingJobStatus", PENDING)
    assert done["ProcessingJobStatus"] == "Completed"
    assert done["ProcessingStartTime"] <= done["ProcessingEndTime"]
    evaluation = read_json(s3, buckets["artifacts"], f"runs/{name}/evaluation/evaluation.json")
    assert evaluation == DEFAULT_EVALUATION
    assert set(evaluation) == {"problem_type", "metrics", "confusion_matrix"}


def test_rule_files_replace_the_default_outputs(sm, s3, buckets, unique, aws):
    low = {
        "problem_type": "classification",
        "metrics": {"f1": 0.2},
        "confusion_matrix": {"labels": [], "matrix": []},
    }
    aws.update_scenario(
        {"processing": {"rules": [{"when": {"name_contains": "weak"}, "files": {"evaluation.json": low}}]}}
    )
    weak, strong = unique("eval-weak"), unique("eval-strong")
    sm.create_processing_job(**processing_request(weak, buckets))
    sm.create_processing_job(**processing_request(strong, buckets))
    for name in (weak, strong):
        wait_for(lambda n=name: sm.describe_processing_job(ProcessingJobName=n), "ProcessingJobStatus", PENDING)

    assert read_json(s3, buckets["artifacts"], f"runs/{weak}/evaluation/evaluation.json")["metrics"] == {"f1": 0.2}
    assert read_json(s3, buckets["artifacts"], f"runs/{strong}/evaluation/evaluation.json")["metrics"]["f1"] == 0.9


def test_default_files_are_configurable(sm, s3, buckets, unique, aws):
    regression = {"problem_type": "regression", "metrics": {"mse": 1.5, "mae": 1.0, "r2": 0.8}}
    aws.update_scenario({"processing": {"files": {"evaluation.json": regression, "notes.txt": "hello"}}})
    name = unique("eval-reg")
    sm.create_processing_job(**processing_request(name, buckets))
    wait_for(lambda: sm.describe_processing_job(ProcessingJobName=name), "ProcessingJobStatus", PENDING)
    assert read_json(s3, buckets["artifacts"], f"runs/{name}/evaluation/evaluation.json") == regression
    body = s3.get_object(Bucket=buckets["artifacts"], Key=f"runs/{name}/evaluation/notes.txt")["Body"].read()
    assert body == b"hello"


def test_failure_rule_fails_with_reason_and_writes_nothing(sm, s3, buckets, unique, aws):
    aws.update_scenario(
        {
            "processing": {
                "rules": [
                    {
                        "when": {"environment": {"PROBLEM_TYPE": "classification"}},
                        "fail": "AlgorithmError: eval crashed",
                    }
                ]
            }
        }
    )
    name = unique("eval-fail")
    sm.create_processing_job(**processing_request(name, buckets))
    done = wait_for(lambda: sm.describe_processing_job(ProcessingJobName=name), "ProcessingJobStatus", PENDING)
    assert done["ProcessingJobStatus"] == "Failed"
    assert done["FailureReason"] == "AlgorithmError: eval crashed"
    assert s3.list_objects_v2(Bucket=buckets["artifacts"], Prefix=f"runs/{name}/")["KeyCount"] == 0


def test_missing_input_fails(sm, buckets, unique):
    name = unique("eval-noinput")
    request = processing_request(name, buckets)
    request["ProcessingInputs"][0]["S3Input"]["S3Uri"] = f"s3://{buckets['data']}/missing/model.tar.gz"
    sm.create_processing_job(**request)
    done = wait_for(lambda: sm.describe_processing_job(ProcessingJobName=name), "ProcessingJobStatus", PENDING)
    assert done["ProcessingJobStatus"] == "Failed"
    assert "No S3 objects found under S3 URL" in done["FailureReason"]


def test_name_contains_lists_what_airflow_counts(sm, buckets, unique):
    # SageMakerHook.count_processing_jobs_by_name calls list_processing_jobs(NameContains=...).
    base = unique("eval-count")
    sm.create_processing_job(**processing_request(base, buckets))
    sm.create_processing_job(**processing_request(f"{base}-1", buckets))
    names = [j["ProcessingJobName"] for j in sm.list_processing_jobs(NameContains=base)["ProcessingJobSummaries"]]
    assert names == [base, f"{base}-1"]  # default order: CreationTime Ascending
    assert sm.list_processing_jobs(NameContains="no-such-job-anywhere")["ProcessingJobSummaries"] == []


def test_stop_processing_job(sm, buckets, unique, aws):
    aws.update_scenario({"processing": {"delay_seconds": 2}})
    name = unique("eval-stop")
    sm.create_processing_job(**processing_request(name, buckets))
    sm.stop_processing_job(ProcessingJobName=name)
    done = wait_for(lambda: sm.describe_processing_job(ProcessingJobName=name), "ProcessingJobStatus", PENDING)
    assert done["ProcessingJobStatus"] == "Stopped"
