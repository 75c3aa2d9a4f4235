"""List semantics (filters, sorting, paging) and the model registry's approval flow."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError
from local_aws_helpers import IMAGE, ROLE, make_model

pytestmark = pytest.mark.integration


@pytest.fixture
def models(sm, unique):
    """12 models of one stem created in a known order, plus one model of another stem."""
    stem = unique("lst")
    names = [f"{stem}-v1-0-{i:02d}" for i in range(12)]
    for name in names:
        make_model(sm, name)
        time.sleep(0.002)  # distinct CreationTime
    make_model(sm, unique("other"))
    return stem, names


def test_name_contains_filters_and_default_sort_is_newest_first(sm, models):
    stem, names = models
    page = sm.list_models(NameContains=stem, MaxResults=100)["Models"]
    assert [m["ModelName"] for m in page] == list(reversed(names))  # CreationTime Descending
    assert set(page[0]) == {"ModelName", "ModelArn", "CreationTime"}


def test_default_page_is_ten_and_next_token_pages_the_rest(sm, models):
    stem, names = models
    first = sm.list_models(NameContains=stem, SortBy="Name", SortOrder="Ascending")
    assert [m["ModelName"] for m in first["Models"]] == names[:10]
    second = sm.list_models(NameContains=stem, SortBy="Name", SortOrder="Ascending", NextToken=first["NextToken"])
    assert [m["ModelName"] for m in second["Models"]] == names[10:]
    assert "NextToken" not in second


def test_paginator_returns_everything(sm, models):
    stem, names = models
    pages = sm.get_paginator("list_models").paginate(
        NameContains=stem, SortBy="Name", SortOrder="Descending", PaginationConfig={"PageSize": 5}
    )
    assert [m["ModelName"] for page in pages for m in page["Models"]] == sorted(names, reverse=True)


def test_creation_time_filters(sm, models):
    # botocore sends timestamps with whole-second precision, so compare against a minute away.
    from datetime import timedelta

    stem, names = models
    created = sm.describe_model(ModelName=names[0])["CreationTime"]
    earlier, later = created - timedelta(minutes=1), created + timedelta(minutes=1)
    assert len(sm.list_models(NameContains=stem, CreationTimeAfter=earlier, MaxResults=100)["Models"]) == 12
    assert sm.list_models(NameContains=stem, CreationTimeAfter=later)["Models"] == []
    assert sm.list_models(NameContains=stem, CreationTimeBefore=earlier)["Models"] == []


def test_invalid_sort_by_and_max_results_are_rejected(sm):
    with pytest.raises(ClientError) as error:
        sm.list_models(SortBy="Status")
    assert error.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError):
        sm.list_models(MaxResults=101)


def test_status_filter_on_training_jobs(sm, buckets, unique, aws):
    from local_aws_helpers import training_request, wait_for

    aws.update_scenario({"training": {"rules": [{"when": {"name_contains": "-bad"}, "fail": "x"}]}})
    stem = unique("st")
    for suffix in ("ok", "bad"):
        sm.create_training_job(**training_request(f"{stem}-{suffix}", buckets))
    for suffix in ("ok", "bad"):
        wait_for(
            lambda s=suffix: sm.describe_training_job(TrainingJobName=f"{stem}-{s}"),
            "TrainingJobStatus",
            {"InProgress"},
        )
    failed = sm.list_training_jobs(NameContains=stem, StatusEquals="Failed")["TrainingJobSummaries"]
    assert [j["TrainingJobName"] for j in failed] == [f"{stem}-bad"]


# -- model registry --------------------------------------------------------------------------------
def register(sm, group, version, status=None):
    request = {
        "ModelPackageGroupName": group,
        "ModelPackageDescription": f"candidate {version}",
        "InferenceSpecification": {
            "Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://artifacts/{version}/model.tar.gz"}],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        "MetadataProperties": {
            "CommitId": "abc123",
            "Repository": "git@example.com:proj.git",
            "GeneratedBy": f"train-{version}",
        },
        "ModelMetrics": {
            "ModelQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": f"s3://artifacts/{version}/evaluation.json",
                }
            }
        },
        "CustomerMetadataProperties": {
            "image_tag": version,
            "f1": "0.91",
            "training_data": "s3://data/proj/model/training/",
        },
    }
    if status:
        request["ModelApprovalStatus"] = status
    return sm.create_model_package(**request)["ModelPackageArn"]


def test_group_create_is_idempotent_the_airflow_way(sm, unique):
    group = unique("grp")
    arn = sm.create_model_package_group(ModelPackageGroupName=group, ModelPackageGroupDescription="d")[
        "ModelPackageGroupArn"
    ]
    assert arn == f"arn:aws:sagemaker:us-east-1:123456789012:model-package-group/{group}"
    with pytest.raises(ClientError) as error:
        sm.create_model_package_group(ModelPackageGroupName=group)
    assert error.value.response["Error"]["Code"] == "ValidationException"
    assert error.value.response["Error"]["Message"].startswith("Model Package Group already exists")
    described = sm.describe_model_package_group(ModelPackageGroupName=group)
    assert described["ModelPackageGroupStatus"] == "Completed"
    assert described["ModelPackageGroupDescription"] == "d"
    assert group in [
        g["ModelPackageGroupName"]
        for g in sm.list_model_package_groups(NameContains=group)["ModelPackageGroupSummaryList"]
    ]


def test_packages_are_versioned_with_metadata_and_pending_approval(sm, unique):
    group = unique("grp")
    sm.create_model_package_group(ModelPackageGroupName=group)
    first = register(sm, group, "1.0.0")
    second = register(sm, group, "1.1.0")
    assert first.endswith(f"model-package/{group}/1") and second.endswith(f"model-package/{group}/2")

    described = sm.describe_model_package(ModelPackageName=second)
    assert described["ModelPackageVersion"] == 2
    assert described["ModelPackageGroupName"] == group
    assert described["ModelApprovalStatus"] == "PendingManualApproval"
    assert described["ModelPackageStatus"] == "Completed"
    assert described["CustomerMetadataProperties"]["image_tag"] == "1.1.0"
    assert described["MetadataProperties"]["CommitId"] == "abc123"
    assert described["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"].endswith("1.1.0/evaluation.json")
    assert described["InferenceSpecification"]["Containers"][0]["Image"] == IMAGE


def test_approval_flow_and_filters(sm, unique):
    group = unique("grp")
    sm.create_model_package_group(ModelPackageGroupName=group)
    v1 = register(sm, group, "1.0.0")
    v2 = register(sm, group, "1.1.0", status="Rejected")
    v3 = register(sm, group, "1.2.0")

    sm.update_model_package(
        ModelPackageArn=v3,
        ModelApprovalStatus="Approved",
        ApprovalDescription="deployed by mlops_deployment",
        CustomerMetadataProperties={"deployed_at": "2026-11-25T16:00:00Z"},
        CustomerMetadataPropertiesToRemove=["f1"],
    )
    approved = sm.describe_model_package(ModelPackageName=v3)
    assert approved["ModelApprovalStatus"] == "Approved"
    assert approved["ApprovalDescription"] == "deployed by mlops_deployment"
    assert approved["CustomerMetadataProperties"] == {
        "image_tag": "1.2.0",
        "training_data": "s3://data/proj/model/training/",
        "deployed_at": "2026-11-25T16:00:00Z",
    }
    assert approved["LastModifiedTime"] >= approved["CreationTime"]

    def arns(**filters):
        pages = sm.get_paginator("list_model_packages").paginate(ModelPackageGroupName=group, **filters)
        return [p["ModelPackageArn"] for page in pages for p in page["ModelPackageSummaryList"]]

    assert arns() == [v1, v2, v3]  # CreationTime Ascending by default
    assert arns(SortOrder="Descending") == [v3, v2, v1]
    assert arns(ModelApprovalStatus="Approved") == [v3]
    assert arns(ModelApprovalStatus="Rejected") == [v2]
    assert arns(ModelApprovalStatus="PendingManualApproval") == [v1]


def test_registry_errors(sm, unique):
    with pytest.raises(ClientError) as error:
        register(sm, unique("no-such-group"), "1.0.0")
    assert error.value.response["Error"]["Code"] == "ValidationException"
    group = unique("grp")
    sm.create_model_package_group(ModelPackageGroupName=group)
    arn = register(sm, group, "1.0.0")
    with pytest.raises(ClientError) as error:
        sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Maybe")
    assert "modelApprovalStatus" in error.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as error:
        sm.describe_model_package(ModelPackageName=arn[:-1] + "99")
    assert error.value.response["Error"]["Code"] == "ValidationException"


def test_tags_round_trip(sm, unique):
    name = unique("tagged")
    sm.create_model(
        ModelName=name,
        PrimaryContainer={"Image": IMAGE},
        ExecutionRoleArn=ROLE,
        Tags=[{"Key": "project", "Value": "proj"}],
    )
    arn = sm.describe_model(ModelName=name)["ModelArn"]
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "version", "Value": "1.2.3"}])
    assert {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=arn)["Tags"]} == {
        "project": "proj",
        "version": "1.2.3",
    }
    sm.delete_tags(ResourceArn=arn, TagKeys=["project"])
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "version", "Value": "1.2.3"}]


def test_duplicate_model_and_missing_model(sm, unique):
    name = unique("model")
    make_model(sm, name)
    with pytest.raises(ClientError) as error:
        make_model(sm, name)
    assert error.value.response["Error"]["Message"].startswith("Cannot create already existing model")
    sm.delete_model(ModelName=name)
    with pytest.raises(ClientError) as error:
        sm.describe_model(ModelName=name)
    assert error.value.response["Error"]["Code"] == "ValidationException"
