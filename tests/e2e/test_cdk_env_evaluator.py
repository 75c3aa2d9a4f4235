"""The CloudFormation intrinsics local mode evaluates to resolve the CDK app's values (e.g. the
ECR repository URI CDK builds from the repository ARN) against the resources it created."""

from __future__ import annotations

import pytest

from local_mode.cdk_env import Evaluator, Unresolvable

ARN = "arn:aws:ecr:us-east-1:123456789012:repository/proj/model"


@pytest.fixture
def evaluate() -> Evaluator:
    return Evaluator(
        account="123456789012",
        region="us-east-1",
        stack_name="mlops-local-proj",
        refs={"Repo": "proj/model"},
        attributes={("Repo", "Arn"): ARN, ("Role", "Arn"): "arn:aws:iam::123456789012:role/r"},
        parameters={"KeyParam": "arn:aws:kms:us-east-1:123456789012:key/k"},
    )


def test_repository_uri_as_cdk_synthesizes_it(evaluate):
    split = {"Fn::Split": [":", {"Fn::GetAtt": ["Repo", "Arn"]}]}
    uri = {
        "Fn::Join": [
            "",
            [
                {"Fn::Select": [4, split]},
                ".dkr.ecr.",
                {"Fn::Select": [3, split]},
                ".",
                {"Ref": "AWS::URLSuffix"},
                "/",
                {"Ref": "Repo"},
            ],
        ]
    }
    assert evaluate(uri) == "123456789012.dkr.ecr.us-east-1.amazonaws.com/proj/model"


def test_refs_parameters_sub_and_nested_documents(evaluate):
    document = {
        "role": {"Fn::GetAtt": ["Role", "Arn"]},
        "key": {"Ref": "KeyParam"},
        "list": [{"Fn::Sub": "arn:${AWS::Partition}:s3:::${Repo}-${AWS::Region}"}, "plain"],
        "sub_vars": {"Fn::Sub": ["${Name}/x", {"Name": {"Ref": "AWS::AccountId"}}]},
    }
    assert evaluate(document) == {
        "role": "arn:aws:iam::123456789012:role/r",
        "key": "arn:aws:kms:us-east-1:123456789012:key/k",
        "list": ["arn:aws:s3:::proj/model-us-east-1", "plain"],
        "sub_vars": "123456789012/x",
    }


@pytest.mark.parametrize(
    "value",
    [{"Ref": "NotCreated"}, {"Fn::GetAtt": ["Repo", "RepositoryUri"]}, {"Fn::ImportValue": "x"}],
)
def test_what_local_mode_did_not_create_is_unresolvable(evaluate, value):
    with pytest.raises(Unresolvable):
        evaluate(value)
