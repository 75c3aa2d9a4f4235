"""PipelineOrchestrationPolicy against the calls the DAGs make: every SageMaker and Application Auto
Scaling call of mlops_dags is granted to the execution role, scoped to the platform's resources."""

from __future__ import annotations

import os

os.environ.setdefault("CDK_VALIDATION", "false")

from aws_cdk import App, Environment, Stack  # noqa: E402
from aws_cdk import aws_iam as iam  # noqa: E402
from aws_cdk import aws_s3 as s3  # noqa: E402
from aws_cdk import aws_sns as sns  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402

from mlops_constructs.orchestration_policy import PipelineOrchestrationPolicy  # noqa: E402
from mlops_core.platform_names import PlatformNames  # noqa: E402

ACCOUNT, REGION = "111111111111", "eu-west-1"

# The SageMaker and Application Auto Scaling calls of mlops_dags (tasks, triggers, callbacks) and of
# the Amazon provider's operators they use, by what they act on.
SAGEMAKER_CALLS = {
    "training-job": ["CreateTrainingJob", "DescribeTrainingJob", "StopTrainingJob", "ListTags", "AddTags"],
    # processing-job: evaluations and drift checks (mlops_dags.drift: no call beyond these).
    "processing-job": ["CreateProcessingJob", "DescribeProcessingJob", "StopProcessingJob", "ListTags", "AddTags"],
    "model": ["CreateModel", "DescribeModel", "AddTags"],
    "endpoint-config": ["CreateEndpointConfig", "DescribeEndpointConfig"],
    "endpoint": [
        "CreateEndpoint",
        "UpdateEndpoint",
        "UpdateEndpointWeightsAndCapacities",
        "DescribeEndpoint",
        "DeleteEndpoint",
        "InvokeEndpoint",
        "AddTags",
        "ListTags",
    ],
    "model-package-group": ["CreateModelPackageGroup", "DescribeModelPackageGroup"],
    "model-package": ["CreateModelPackage", "DescribeModelPackage", "UpdateModelPackage"],
    # mlops_dags.lineage: the ends of an association are artifacts, actions or contexts.
    "artifact": ["CreateArtifact", "DescribeArtifact", "AddAssociation"],
    "action": ["CreateAction", "DescribeAction", "AddAssociation"],
    "context": ["CreateContext", "DescribeContext", "AddAssociation"],
}
LIST_CALLS = [
    "ListTrainingJobs",
    "ListProcessingJobs",
    "ListModels",
    "ListModelPackages",
    "ListArtifacts",
    "ListAssociations",
]
AUTOSCALING_CALLS = [
    "RegisterScalableTarget",
    "DeregisterScalableTarget",
    "PutScalingPolicy",
    "DescribeScalableTargets",
    "DescribeScalingPolicies",
]


def statements() -> list[dict]:
    app = App()
    stack = Stack(app, "Platform", env=Environment(account=ACCOUNT, region=REGION))
    role = iam.Role(stack, "Mwaa", assumed_by=iam.ServicePrincipal("airflow.amazonaws.com"))
    PipelineOrchestrationPolicy(
        stack,
        "Orchestration",
        role=role,
        names=PlatformNames(environment="dev", account=ACCOUNT, region=REGION),
        data_bucket=s3.Bucket(stack, "Data"),
        artifact_bucket=s3.Bucket(stack, "Artifacts"),
        alerts_topic=sns.Topic(stack, "Alerts"),
        slack_webhook_secret_name=None,
    )
    policies = Template.from_stack(stack).find_resources("AWS::IAM::Policy")
    return [st for policy in policies.values() for st in policy["Properties"]["PolicyDocument"]["Statement"]]


def _resources(statement: dict) -> list:
    resource = statement["Resource"]
    return resource if isinstance(resource, list) else [resource]


def allowed(action: str, kind: str | None, found: list[dict]) -> bool:
    """Whether a statement allows ``action`` on a SageMaker resource of that kind (any: None)."""
    for statement in found:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if statement["Effect"] != "Allow" or action not in actions:
            continue
        for resource in _resources(statement):
            # A SageMaker ARN is an Fn::Join whose last part ends ":<kind>/*".
            if (kind is None and resource == "*") or (
                kind is not None and (f":{kind}/*" in str(resource) or f":{kind}/mlops-*" in str(resource))
            ):
                return True
    return False


def test_every_sagemaker_call_of_the_dags_is_granted_on_its_resource_type_only():
    found = statements()
    for kind, calls in SAGEMAKER_CALLS.items():
        for call in calls:
            assert allowed(f"sagemaker:{call}", kind, found), (call, kind)
    for call in LIST_CALLS:  # List* take no resource ARN
        assert allowed(f"sagemaker:{call}", None, found), call
    sagemaker_on_star = {
        action
        for st in found
        if "*" in _resources(st)
        for action in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])
        if action.startswith("sagemaker:")
    }
    assert sagemaker_on_star == {f"sagemaker:{call}" for call in LIST_CALLS} | {
        "sagemaker:ListEndpoints",
        "sagemaker:ListModelPackageGroups",
    }


def test_the_shadow_trial_may_read_variant_metrics_and_nothing_else_of_cloudwatch():
    """GetMetricData takes no resource ARN nor namespace condition (Service Authorization Reference):
    granted on "*", and no other CloudWatch action is."""
    found = statements()
    assert allowed("cloudwatch:GetMetricData", None, found)
    cloudwatch = {
        action
        for st in found
        for action in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])
        if action.startswith("cloudwatch:")
    }
    assert cloudwatch == {"cloudwatch:GetMetricData"}


def test_endpoint_autoscaling_calls_of_the_deployment_are_granted():
    found = statements()
    for call in AUTOSCALING_CALLS:
        assert allowed(f"application-autoscaling:{call}", None, found), call


def test_lineage_actions_and_contexts_are_granted_on_the_platforms_names_only():
    found = statements()
    lineage = next(st for st in found if st.get("Sid") == "LineageRecords")
    resources = [str(r) for r in _resources(lineage)]
    assert any(":action/mlops-*" in r for r in resources) and any(":context/mlops-*" in r for r in resources)
    assert not any(":action/*" in r or ":context/*" in r for r in resources)
    images = next(st for st in found if st.get("Sid") == "ImageDigests")
    assert images["Action"] == "ecr:DescribeImages" and ":repository/*" in str(images["Resource"])
