"""Local SageMaker's ML Lineage Tracking calls through boto3, held to the API reference (botocore's
service model: name and ARN patterns, enums, list limits) and to the Service Authorization
Reference (an artifact's ARN is ``artifact/<hash of its source>``, an action's and a context's
``action/<name>`` and ``context/<name>``)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.integration


def _artifact(sm, uri: str, kind: str = "DataSet", fingerprint: str = "etags:1") -> str:
    return sm.create_artifact(
        Source={"SourceUri": uri, "SourceTypes": [{"SourceIdType": "Custom", "Value": fingerprint}]},
        ArtifactType=kind,
        Properties={"objects": "2"},
    )["ArtifactArn"]


def test_a_graph_recorded_with_the_calls_is_walked_by_query_lineage(sm, unique):
    data = _artifact(sm, f"s3://data/{unique('d')}/training/")
    image = _artifact(sm, f"repo@sha256:{unique('i')}", "Image")
    train = sm.create_action(
        ActionName=unique("run-train"),
        Source={"SourceUri": "arn:aws:sagemaker:us-east-1:123456789012:training-job/x"},
        ActionType="TrainingJob",
        Status="Completed",
    )["ActionArn"]
    model = _artifact(sm, f"s3://artifacts/{unique('m')}/model.tar.gz", "Model")
    endpoint = sm.create_context(
        ContextName=unique("ep"),
        Source={"SourceUri": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/x"},
        ContextType="Endpoint",
    )["ContextArn"]
    for source, destination, kind in (
        (data, train, "ContributedTo"),
        (image, train, "ContributedTo"),
        (train, model, "Produced"),
        (model, endpoint, "ContributedTo"),
    ):
        sm.add_association(SourceArn=source, DestinationArn=destination, AssociationType=kind)

    upstream = sm.query_lineage(StartArns=[endpoint], Direction="Ascendants", IncludeEdges=True, MaxResults=50)
    assert {(v["Arn"], v["Type"], v["LineageType"]) for v in upstream["Vertices"]} == {
        (data, "DataSet", "Artifact"),
        (image, "Image", "Artifact"),
        (train, "TrainingJob", "Action"),
        (model, "Model", "Artifact"),
    }
    assert {"SourceArn": train, "DestinationArn": model, "AssociationType": "Produced"} in upstream["Edges"]
    downstream = sm.query_lineage(StartArns=[data], Direction="Descendants", MaxDepth=1)
    assert [v["Arn"] for v in downstream["Vertices"]] == [train]  # one level only
    only_actions = sm.query_lineage(StartArns=[endpoint], Direction="Ascendants", Filters={"LineageTypes": ["Action"]})
    assert [v["Arn"] for v in only_actions["Vertices"]] == [train]
    assert sm.list_associations(DestinationArn=train)["AssociationSummaries"][0]["SourceType"] in ("DataSet", "Image")


def test_artifacts_are_found_by_source_and_contexts_by_name(sm, unique):
    uri = f"s3://data/{unique('d')}/training/"
    first = _artifact(sm, uri, fingerprint="etags:a")
    changed = _artifact(sm, uri, fingerprint="etags:b")  # the data changed: another artifact
    assert first != changed and ":artifact/" in first
    listed = sm.list_artifacts(SourceUri=uri)["ArtifactSummaries"]
    assert {a["ArtifactArn"] for a in listed} == {first, changed}
    with pytest.raises(ClientError, match="already exists"):
        _artifact(sm, uri, fingerprint="etags:a")  # same source, same ARN
    name = unique("ctx")
    arn = sm.create_context(ContextName=name, Source={"SourceUri": "x"}, ContextType="Endpoint")["ContextArn"]
    assert arn.endswith(f":context/{name}")
    assert sm.describe_context(ContextName=name)["ContextArn"] == arn


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda sm: sm.create_action(ActionName="bad_name", Source={"SourceUri": "x"}, ActionType="T"), "actionName"),
        (
            lambda sm: sm.create_action(ActionName="a", Source={"SourceUri": "x"}, ActionType="T", Status="Done"),
            "status",
        ),
        (
            lambda sm: sm.create_artifact(
                Source={"SourceUri": "x", "SourceTypes": [{"SourceIdType": "Sha1", "Value": "v"}]}, ArtifactType="T"
            ),
            "sourceIdType",
        ),
        (
            lambda sm: sm.create_context(
                ContextName="c", Source={"SourceUri": "x"}, ContextType="T", Properties={str(i): "v" for i in range(31)}
            ),
            "properties",
        ),
        (
            lambda sm: sm.add_association(SourceArn="arn:aws:s3:::bucket/key", DestinationArn="arn:aws:s3:::b/k"),
            "sourceArn",
        ),
        (
            lambda sm: sm.query_lineage(
                StartArns=[
                    "arn:aws:sagemaker:us-east-1:123456789012:context/a",
                    "arn:aws:sagemaker:us-east-1:123456789012:context/b",
                ]
            ),
            "startArns",
        ),
        (lambda sm: sm.query_lineage(StartArns=[], MaxResults=51), "maxResults"),
    ],
    ids=[
        "name pattern",
        "action status",
        "source id type",
        "30 properties",
        "association ARN",
        "one start ARN",
        "max results",
    ],
)
def test_what_the_api_refuses_is_refused(sm, call, message):
    with pytest.raises(ClientError) as refused:
        call(sm)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert message in str(refused.value)


def test_unknown_ends_and_start_arns_are_not_found(sm, unique):
    missing = f"arn:aws:sagemaker:us-east-1:123456789012:context/{unique('nothing')}"
    existing = _artifact(sm, f"s3://data/{unique('d')}/")
    with pytest.raises(ClientError) as refused:
        sm.add_association(SourceArn=existing, DestinationArn=missing)
    assert refused.value.response["Error"]["Code"] == "ResourceNotFound"
    with pytest.raises(ClientError, match="ResourceNotFound"):
        sm.query_lineage(StartArns=[missing])
    with pytest.raises(ClientError, match="ResourceNotFound"):
        sm.describe_context(ContextName=unique("nothing"))
