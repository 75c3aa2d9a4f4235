"""The DAGs record each run's lineage in SageMaker ML Lineage Tracking (local SageMaker's lineage
calls): data with its content fingerprint, image with its digest, source commit, training and
evaluation jobs, model, package, then endpoint config and endpoint; retried tasks record the same
graph once, and runs on the same data share its artifact."""

from __future__ import annotations

import hashlib
import json

import pytest
from harness import DATA_BUCKET, PROJECT, TEST_CSV, deploy, new_model, run_dag, train

from mlops_core import names

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _push_image(boto, model: str, tag: str) -> str:
    """An image manifest in (local) ECR under the model's repository; returns its digest."""
    ecr = boto.client("ecr")
    repository = names.ecr_repository_name(PROJECT, model)
    try:
        ecr.create_repository(repositoryName=repository)
    except ecr.exceptions.RepositoryAlreadyExistsException:
        pass
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"digest": f"sha256:{hashlib.sha256(tag.encode()).hexdigest()}"},
        }
    )
    return ecr.put_image(repositoryName=repository, imageManifest=manifest, imageTag=tag)["image"]["imageId"][
        "imageDigest"
    ]


def _upstream(sm, start: str) -> tuple[dict[str, dict], list[dict]]:
    """Every vertex above ``start`` by ARN (paged as QueryLineage pages), and the edges."""
    vertices, edges, token = {}, [], None
    while True:
        page = sm.query_lineage(
            StartArns=[start],
            Direction="Ascendants",
            IncludeEdges=True,
            MaxResults=50,
            **({"NextToken": token} if token else {}),
        )
        vertices.update({v["Arn"]: v for v in page["Vertices"]})
        edges += [e for e in page.get("Edges", []) if e not in edges]
        token = page.get("NextToken")
        if not token:
            return vertices, edges


def test_training_then_deployment_record_the_lineage_from_data_to_endpoint(env):
    m = new_model(env, "traced")
    digest = _push_image(env["boto"], m.model, "1.0.0")
    assert train(env, m, tag="1.0.0").state == "success"
    deployed = deploy(env, m, "1.0.0+r0")
    assert deployed.state == "success", deployed.tasks
    sm = env["boto"].client("sagemaker")
    endpoint = sm.describe_context(
        ContextName=names.lineage_context_name(names.LINEAGE_ENDPOINT, m.config.endpoint_name)
    )
    assert endpoint["Source"]["SourceUri"].endswith(f":endpoint/{m.config.endpoint_name.lower()}")

    vertices, edges = _upstream(sm, endpoint["ContextArn"])
    by_type = {}
    for vertex in vertices.values():
        by_type.setdefault(vertex["Type"], []).append(vertex["Arn"])
    assert sorted(by_type) == sorted(
        [
            names.LINEAGE_DATASET,
            names.LINEAGE_IMAGE,
            names.LINEAGE_SOURCE_COMMIT,
            names.LINEAGE_TRAINING_JOB,
            names.LINEAGE_EVALUATION_JOB,
            names.LINEAGE_MODEL,
            names.LINEAGE_MODEL_PACKAGE,
            names.LINEAGE_ENDPOINT_CONFIG,
        ]
    )
    [data] = by_type[names.LINEAGE_DATASET]
    source = sm.describe_artifact(ArtifactArn=data)["Source"]
    assert source["SourceUri"] == m.config.training_data_uri
    etags = sorted(
        f"{o['Key']} {o['ETag']}"
        for o in env["boto"]
        .client("s3")
        .list_objects_v2(Bucket=DATA_BUCKET, Prefix=f"{PROJECT}/{m.model}/training/")["Contents"]
    )
    assert source["SourceTypes"] == [
        {"SourceIdType": "Custom", "Value": "etags-sha256:" + hashlib.sha256("\n".join(etags).encode()).hexdigest()}
    ]
    [image] = by_type[names.LINEAGE_IMAGE]
    properties = sm.describe_artifact(ArtifactArn=image)["Properties"]
    assert properties == {"repository": m.config.image_repository_uri, "tag": "1.0.0", "digest": digest}
    [commit] = by_type[names.LINEAGE_SOURCE_COMMIT]
    assert sm.describe_artifact(ArtifactArn=commit)["Source"]["SourceUri"] == "commit:abc1234"
    [job] = by_type[names.LINEAGE_TRAINING_JOB]
    [model] = by_type[names.LINEAGE_MODEL]
    assert {"SourceArn": job, "DestinationArn": model, "AssociationType": "Produced"} in edges
    [package] = by_type[names.LINEAGE_MODEL_PACKAGE]
    assert sm.describe_artifact(ArtifactArn=package)["Source"]["SourceUri"] == m.packages()[0]["ModelPackageArn"]


def test_retried_recording_adds_nothing_and_runs_on_the_same_data_share_it(env):
    from mlops_dags import lineage

    m = new_model(env, "retraced")
    first = train(env, m, tag="1.0.0")
    assert first.state == "success"
    recorded = first.returned("record_lineage")
    sm = env["boto"].client("sagemaker")
    associations = sm.list_associations(DestinationArn=recorded["train"], MaxResults=100)["AssociationSummaries"]
    again = lineage.record_training(first.returned("train"), first.returned("register"))  # a task retry
    assert again == recorded
    assert len(sm.list_associations(DestinationArn=recorded["train"], MaxResults=100)["AssociationSummaries"]) == len(
        associations
    )

    second = train(env, m, tag="1.0.0", retraining=True)  # same data, unchanged
    assert second.returned("record_lineage")["data"] == recorded["data"]
    trained_on_it = sm.query_lineage(
        StartArns=[recorded["data"]],
        Direction="Descendants",
        MaxDepth=1,
        Filters={"Types": [names.LINEAGE_TRAINING_JOB]},
    )["Vertices"]
    assert {v["Arn"] for v in trained_on_it} == {recorded["train"], second.returned("record_lineage")["train"]}

    # New data is another artifact: its fingerprint changed.
    env["boto"].client("s3").put_object(
        Bucket=DATA_BUCKET, Key=f"{PROJECT}/{m.model}/training/train/more.csv", Body=TEST_CSV.encode()
    )
    third = run_dag(
        env["dags"][names.DAG_TRAINING],
        {"project": PROJECT, "model": m.model, "image_tag": "1.0.0", "retraining": True},
    )
    assert third.returned("record_lineage")["data"] != recorded["data"]
    assert "commit" not in third.returned("record_lineage")  # no source commit given
