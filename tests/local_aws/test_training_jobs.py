"""Training jobs through real boto3 clients: transitions, artifacts, failures, the fields Airflow reads."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from botocore.exceptions import ClientError
from local_aws_helpers import training_request, wait_for

pytestmark = pytest.mark.integration
PENDING = {"InProgress", "Stopping"}


def test_job_goes_in_progress_then_completed_with_artifacts_in_s3(sm, s3, buckets, unique, aws):
    name = unique("train-ok")
    sm.create_training_job(**training_request(name, buckets))

    first = sm.describe_training_job(TrainingJobName=name)
    assert first["TrainingJobStatus"] == "InProgress"
    assert first["SecondaryStatus"] == "Starting"
    assert "ModelArtifacts" not in first

    done = wait_for(lambda: sm.describe_training_job(TrainingJobName=name), "TrainingJobStatus", PENDING)
    assert done["TrainingJobStatus"] == "Completed"
    assert done["SecondaryStatus"] == "Completed"
    uri = done["ModelArtifacts"]["S3ModelArtifacts"]
    assert uri == f"s3://{buckets['artifacts']}/proj/model/runs/{name}/output/model.tar.gz"
    body = s3.get_object(Bucket=buckets["artifacts"], Key=f"proj/model/runs/{name}/output/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        manifest = json.load(archive.extractfile("model.json"))
    assert manifest["training_job_name"] == name
    assert manifest["hyperparameters"] == {"epochs": "3"}

    statuses = [e["status"] for e in aws.events() if e["name"] == name]
    assert statuses == ["InProgress", "Completed"]


def test_description_has_the_fields_airflows_hook_reads(sm, buckets, unique):
    name = unique("train-fields")
    sm.create_training_job(**training_request(name, buckets))
    done = wait_for(lambda: sm.describe_training_job(TrainingJobName=name), "TrainingJobStatus", PENDING)

    # SageMakerHook.count_billable_seconds and the operator's summary.
    assert done["TrainingStartTime"] <= done["TrainingEndTime"]
    assert done["ResourceConfig"]["InstanceCount"] == 1
    assert done["CreationTime"] <= done["TrainingStartTime"]
    assert done["LastModifiedTime"] >= done["TrainingStartTime"]
    # secondary_training_status_message: every transition has Status, StartTime and StatusMessage.
    transitions = done["SecondaryStatusTransitions"]
    assert [t["Status"] for t in transitions] == [
        "Starting",
        "Downloading",
        "Training",
        "Uploading",
        "Completed",
    ]
    assert all(t["StatusMessage"] and t["StartTime"] for t in transitions)
    assert all("EndTime" in t for t in transitions)
    assert done["BillableTimeInSeconds"] >= 1
    assert done["HyperParameters"] == {"epochs": "3"}
    assert done["AlgorithmSpecification"]["TrainingImage"].endswith(":1.2.3")


def test_botocore_waiter_used_by_airflow_triggers_completes(sm, buckets, unique):
    name = unique("train-waiter")
    sm.create_training_job(**training_request(name, buckets))
    sm.get_waiter("training_job_completed_or_stopped").wait(
        TrainingJobName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 10}
    )
    assert sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "Completed"


def test_logs_are_written_where_airflow_print_log_tails_them(sm, buckets, unique, aws):
    import boto3

    name = unique("train-logs")
    sm.create_training_job(**training_request(name, buckets))
    wait_for(lambda: sm.describe_training_job(TrainingJobName=name), "TrainingJobStatus", PENDING)
    logs = boto3.client("logs")
    streams = logs.describe_log_streams(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=name + "/", orderBy="LogStreamName"
    )["logStreams"]
    assert len(streams) == 1
    events = logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=streams[0]["logStreamName"])
    assert any("model artifacts written" in e["message"] for e in events["events"])


@pytest.mark.parametrize(
    ("rule", "overrides"),
    [
        ({"hyperparameters": {"fail": "true"}}, {"HyperParameters": {"fail": "true"}}),
        ({"name_contains": "doomed"}, {}),
        (
            {"image_contains": ":9.9.9"},
            {"AlgorithmSpecification": {"TrainingImage": "repo/m:9.9.9", "TrainingInputMode": "File"}},
        ),
    ],
    ids=["hyperparameter", "name", "image"],
)
def test_failure_rule_fails_the_job_with_reason_and_no_artifacts(sm, s3, buckets, unique, aws, rule, overrides):
    aws.update_scenario({"training": {"rules": [{"when": rule, "fail": "AlgorithmError: boom"}]}})
    name = unique("doomed")
    sm.create_training_job(**training_request(name, buckets, **overrides))

    done = wait_for(lambda: sm.describe_training_job(TrainingJobName=name), "TrainingJobStatus", PENDING)
    assert done["TrainingJobStatus"] == "Failed"
    assert done["FailureReason"] == "AlgorithmError: boom"
    assert done["SecondaryStatus"] == "Failed"
    assert "ModelArtifacts" not in done
    assert s3.list_objects_v2(Bucket=buckets["artifacts"])["KeyCount"] == 0


def test_rule_that_does_not_match_leaves_jobs_alone(sm, buckets, unique, aws):
    aws.update_scenario({"training": {"rules": [{"when": {"hyperparameters": {"fail": "true"}}, "fail": "x"}]}})
    name = unique("fine")
    sm.create_training_job(**training_request(name, buckets, HyperParameters={"fail": "false"}))
    done = wait_for(lambda: sm.describe_training_job(TrainingJobName=name), "TrainingJobStatus", PENDING)
    assert done["TrainingJobStatus"] == "Completed"


def test_empty_input_prefix_fails_as_on_aws(sm, buckets, unique):
    name = unique("no-data")
    request = training_request(name, buckets)
    request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = f"s3://{buckets['data']}/nothing-here/"
    sm.create_training_job(**request)
    done = wait_for(lambda: sm.describe_training_job(TrainingJobName=name), "TrainingJobStatus", PENDING)
    assert done["TrainingJobStatus"] == "Failed"
    assert "No S3 objects found under S3 URL" in done["FailureReason"]
    assert done["FailureReason"].startswith("ClientError: Data download failed:")


def test_duplicate_name_is_rejected(sm, buckets, unique):
    name = unique("dup")
    sm.create_training_job(**training_request(name, buckets))
    with pytest.raises(ClientError) as error:
        sm.create_training_job(**training_request(name, buckets))
    assert error.value.response["Error"]["Code"] == "ResourceInUse"


def test_describe_unknown_job_is_validation_exception(sm):
    # Airflow's _check_if_job_exists treats ValidationException as "does not exist".
    with pytest.raises(ClientError) as error:
        sm.describe_training_job(TrainingJobName="never-created")
    assert error.value.response["Error"]["Code"] == "ValidationException"
    assert error.value.response["Error"]["Message"] == "Requested resource not found."


def test_invalid_name_is_rejected(sm, buckets):
    with pytest.raises(ClientError) as error:
        sm.create_training_job(**training_request("bad_name_with_underscores", buckets))
    assert error.value.response["Error"]["Code"] == "ValidationException"
    assert "regular expression" in error.value.response["Error"]["Message"]


def test_stop_training_job(sm, buckets, unique, aws):
    aws.update_scenario({"training": {"delay_seconds": 2}})
    name = unique("stop")
    sm.create_training_job(**training_request(name, buckets))
    sm.stop_training_job(TrainingJobName=name)
    assert sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "Stopping"
    done = wait_for(lambda: sm.describe_training_job(TrainingJobName=name), "TrainingJobStatus", PENDING)
    assert done["TrainingJobStatus"] == "Stopped"
    with pytest.raises(ClientError) as error:
        sm.stop_training_job(TrainingJobName=name)
    assert error.value.response["Error"]["Code"] == "ValidationException"


def test_delay_is_steerable(sm, buckets, unique, aws):
    import time

    aws.update_scenario({"training": {"delay_seconds": 1.0}})
    name = unique("slow")
    started = time.monotonic()
    sm.create_training_job(**training_request(name, buckets))
    wait_for(lambda: sm.describe_training_job(TrainingJobName=name), "TrainingJobStatus", PENDING)
    assert time.monotonic() - started >= 1.0


def test_max_runtime_stops_the_job_as_aws_does(sm, buckets, unique, aws):
    aws.update_scenario({"training": {"delay_seconds": 4}})
    name = unique("too-long")
    sm.create_training_job(**training_request(name, buckets, StoppingCondition={"MaxRuntimeInSeconds": 1}))
    done = wait_for(lambda: sm.describe_training_job(TrainingJobName=name), "TrainingJobStatus", PENDING)
    assert (done["TrainingJobStatus"], done["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded")
    assert "ModelArtifacts" not in done
