"""``mlops lineage`` against local AWS: a run's lineage recorded as the DAGs record it
(mlops_dags.lineage, over real local SageMaker jobs, package and endpoint), then read back with
QueryLineage as a tree, from the endpoint and from the model version."""

from __future__ import annotations

import sys
from pathlib import Path

import boto3
import pytest
from local_aws_helpers import IMAGE, make_model, training_request, wait_for
from test_processing_jobs import processing_request

from mlops_cli.main import main
from mlops_core import names

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "dag_assets" / "dags"))
from mlops_dags import aws as dag_aws  # noqa: E402
from mlops_dags import lineage  # noqa: E402

pytestmark = pytest.mark.integration
PENDING = {"InProgress", "Creating", "Stopping"}


@pytest.fixture
def recorded(aws, sm, s3, buckets, monkeypatch):
    """A trained, evaluated, registered and deployed run of proj/model, its lineage recorded."""
    monkeypatch.setattr(dag_aws, "client", lambda service, **_: boto3.client(service))
    run_name = str(names.RunName.new("proj", "model", "1.2.3", 0))
    for name in [e["EndpointName"] for e in sm.list_endpoints(MaxResults=100)["Endpoints"]]:
        if name == names.endpoint_name("proj", "model"):
            sm.delete_endpoint(EndpointName=name)  # another test's deployment of proj/model
    sm.create_training_job(**training_request(run_name, buckets))
    job = wait_for(lambda: sm.describe_training_job(TrainingJobName=run_name), "TrainingJobStatus", PENDING)
    sm.create_processing_job(**processing_request(run_name, buckets))
    wait_for(lambda: sm.describe_processing_job(ProcessingJobName=run_name), "ProcessingJobStatus", PENDING)
    group = names.model_package_group_name("proj", "model")
    try:
        sm.create_model_package_group(ModelPackageGroupName=group)
    except sm.exceptions.ClientError:
        pass  # a group another test made
    package_arn = sm.create_model_package(
        ModelPackageGroupName=group,
        InferenceSpecification={
            "Containers": [{"Image": IMAGE, "ModelDataUrl": job["ModelArtifacts"]["S3ModelArtifacts"]}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        CustomerMetadataProperties={"model_version": f"1.2.3+r0-{run_name[-6:]}"},
    )["ModelPackageArn"]
    run = {
        "project": "proj",
        "model": "model",
        "run_name": run_name,
        "model_version": f"1.2.3+r0-{run_name[-6:]}",
        "training_data": f"s3://{buckets['data']}/proj/model/training/",
        "image_uri": IMAGE,
        "trained_at": "2026-12-05T05:00:00+00:00",
        "source_commit": "abc1234",
    }
    lineage.record_training(run, {"package_arn": package_arn})
    endpoint = names.endpoint_name("proj", "model")
    make_model(sm, run_name)
    sm.create_endpoint_config(
        EndpointConfigName=run_name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": run_name,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=run_name)
    wait_for(lambda: sm.describe_endpoint(EndpointName=endpoint), "EndpointStatus", PENDING)
    release = {"run_name": run_name, "endpoint_name": endpoint, "package_arn": package_arn, **run}
    lineage.record_deployment(release)
    return run | {
        "endpoint": endpoint,
        "package_arn": package_arn,
        "model_artifact": job["ModelArtifacts"]["S3ModelArtifacts"],
    }


def test_the_lineage_of_an_endpoint_reads_from_endpoint_to_data_and_code(recorded, capsys):
    assert main(["lineage", recorded["endpoint"]]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"Endpoint arn:aws:sagemaker:us-east-1:123456789012:endpoint/{recorded['endpoint']}")
    assert lines[1].startswith(
        f"└── EndpointConfig arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/{recorded['run_name'].lower()}"
    )
    assert " [since 20" in lines[1] and lines[1].split(" [since ")[0].endswith(f"({recorded['model_version']})")
    assert lines[2] == f"    └── ModelPackage {recorded['package_arn']} ({recorded['model_version']})"
    text = "\n".join(lines)
    for expected in (
        f"Model {recorded['model_artifact']}",
        f"TrainingJob arn:aws:sagemaker:us-east-1:123456789012:training-job/{recorded['run_name'].lower()} "
        f"({recorded['model_version']}, trained 2026-12-05T05:00:00+00:00)",
        f"DataSet {recorded['training_data']} (1 objects, etags-sha256:",
        f"Image {IMAGE} (tag 1.2.3, digest unknown: not in ECR)",
        "SourceCommit commit:abc1234",
        f"ProcessingJob arn:aws:sagemaker:us-east-1:123456789012:processing-job/{recorded['run_name'].lower()}",
        "(shown above)",
        f"Trained on DataSet {recorded['training_data']}",
    ):
        assert expected in text, (expected, text)


def test_the_lineage_of_a_model_version_names_where_it_serves(recorded, capsys):
    assert main(["lineage", f"proj/model@{recorded['model_version']}"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"ModelPackage {recorded['package_arn']} ({recorded['model_version']})\n")
    deployed = out.split("Deployed as:\n", 1)[1]
    assert deployed.startswith(
        f"├── EndpointConfig arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/{recorded['run_name'].lower()}"
    ) or deployed.startswith(
        f"└── EndpointConfig arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/{recorded['run_name'].lower()}"
    )
    assert f"Endpoint arn:aws:sagemaker:us-east-1:123456789012:endpoint/{recorded['endpoint']}" in deployed


def test_an_unknown_endpoint_is_a_usage_error_naming_the_forms(aws, capsys):
    assert main(["lineage", "no-such-endpoint"]) == 2
    assert "project/model@1.4.2+r3" in capsys.readouterr().err
