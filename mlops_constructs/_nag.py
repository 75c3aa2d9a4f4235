"""cdk-nag (v3) acknowledgements, kept next to the construct that causes the finding.

cdk-nag 3 matches acknowledgement ids exactly. IAM5 findings carry the wildcard in the id
(``AwsSolutions-IAM5[Resource::<Bucket.Arn>/*]``), which depends on logical ids and accounts, so
:func:`acknowledge_wildcards` takes *patterns* of the wildcards a construct is allowed to use and
acknowledges, at synth time, exactly the findings those patterns cover. A wildcard that no pattern
covers still fails synth: every acknowledged wildcard was reviewed and carries a reason.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import jsii
from aws_cdk import Acknowledgment, Aspects, CfnResource, IAspect, Stack, Validations
from aws_cdk import aws_iam as iam
from constructs import IConstruct

from mlops_constructs._checkov import (
    CDK_BUCKET_DEPLOYMENT_FUNCTION,
    CDK_HANDLER_FUNCTION,
    CDK_HANDLER_LOG_GROUP,
    skip_checks,
)

PACK = "AwsSolutions"
# Singleton Lambda handlers the CDK itself adds to a stack (their construct ids): BucketDeployment,
# AwsCustomResource, and the provider of the VPC's default-security-group restriction. Their runtime,
# managed policy and function settings are chosen by the CDK, not by us.
BASIC_EXECUTION_POLICY = "arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
BUCKET_DEPLOYMENT_HANDLER = "Custom::CDKBucketDeployment"
AWS_CUSTOM_RESOURCE_HANDLER = "AWS679f53fac002430cb0da5b7982bd2287"
VPC_DEFAULT_SG_HANDLER = "Custom::VpcRestrictDefaultSGCustomResourceProvider"
CDK_HANDLER_ID_PREFIXES = (BUCKET_DEPLOYMENT_HANDLER, AWS_CUSTOM_RESOURCE_HANDLER, VPC_DEFAULT_SG_HANDLER)
MIN_REASON_LENGTH = 20
# The wildcard actions CDK's bucket.grant_read/grant_read_write emit (with the bucket's KMS key).
BUCKET_GRANT_ACTIONS = (
    "Action::s3:GetObject*",
    "Action::s3:GetBucket*",
    "Action::s3:List*",
    "Action::s3:DeleteObject*",
    "Action::s3:Abort*",
    "Action::kms:GenerateDataKey*",
    "Action::kms:ReEncrypt*",
)


def _check_reason(rule: str, reason: str) -> None:
    if len(reason.strip()) < MIN_REASON_LENGTH:
        raise ValueError(f"cdk-nag acknowledgement {rule} needs a real reason, got {reason!r}")


def acknowledge(scope: IConstruct, reasons: dict[str, str]) -> None:
    """Acknowledge whole rules (``"AwsSolutions-S1"``) on ``scope`` and its children."""
    for rule, reason in reasons.items():
        _check_reason(rule, reason)
        Validations.of(scope).acknowledge(Acknowledgment(id=f"{PACK}::{rule}", reason=reason))


def flatten(value: Any) -> str:
    """Render a resolved CloudFormation value the way cdk-nag prints it in finding ids."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((fn, arg),) = value.items()
        if fn == "Ref":
            return f"<{arg}>"
        if fn == "Fn::GetAtt":
            return f"<{arg[0]}.{arg[1]}>" if isinstance(arg, list) else f"<{arg}>"
        if fn == "Fn::Join":
            return arg[0].join(flatten(part) for part in arg[1])
    return str(value)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def wildcard_findings(document: dict[str, Any]) -> Iterator[str]:
    """The ``Action::...``/``Resource::...`` parts of the IAM5 findings a policy document raises."""
    for statement in _as_list(document.get("Statement", [])):
        if statement.get("Effect") != "Allow":
            continue
        for action in _as_list(statement.get("Action", [])):
            if isinstance(action, str) and "*" in action:
                yield f"Action::{action}"
        for resource in _as_list(statement.get("Resource", [])):
            text = flatten(resource)
            if "*" in text:
                yield f"Resource::{text}"


def _documents(node: IConstruct) -> list[dict[str, Any]]:
    stack = Stack.of(node)
    if isinstance(node, iam.CfnPolicy):
        return [stack.resolve(node.policy_document)]
    if isinstance(node, iam.CfnManagedPolicy):
        return [stack.resolve(node.policy_document)]
    if isinstance(node, iam.CfnRole):
        policies = stack.resolve(node.policies) or []
        return [policy["PolicyDocument"] for policy in policies]
    return []


@jsii.implements(IAspect)
class _WildcardAcknowledger:
    def __init__(self, patterns: Sequence[str], reason: str) -> None:
        self.patterns = tuple(patterns)
        self.reason = reason

    def visit(self, node: IConstruct) -> None:
        for document in _documents(node):
            for finding in wildcard_findings(document):
                if any(fnmatch.fnmatchcase(finding, pattern) for pattern in self.patterns):
                    Validations.of(node).acknowledge(
                        Acknowledgment(id=f"{PACK}::AwsSolutions-IAM5[{finding}]", reason=self.reason)
                    )


def acknowledge_wildcards(scope: IConstruct, patterns: Iterable[str], reason: str) -> None:
    """Acknowledge IAM5 findings under ``scope`` whose wildcard matches one of ``patterns``
    (fnmatch syntax over ``Action::<action>`` / ``Resource::<rendered resource>``)."""
    _check_reason("AwsSolutions-IAM5", reason)
    Aspects.of(scope).add(_WildcardAcknowledger(list(patterns), reason))


def _first_time(scope: Any, key: str) -> bool:
    """True the first time ``key`` is seen for ``scope``: constructs built many times per stack
    (ModelPipeline) acknowledge the same shared handler once, not once per model (each Aspect and
    acknowledgement is a jsii call at synth, which adds up over hundreds of models)."""
    seen = scope.__dict__.setdefault("_mlops_nag_acknowledged", set())
    if key in seen:
        return False
    seen.add(key)
    return True


def acknowledge_cdk_handlers(stack: Stack) -> None:
    """Acknowledge cdk-nag findings and skip checkov checks on the CDK's own singleton handler
    functions in ``stack`` (call it after creating the construct that adds them)."""
    for child in stack.node.children:
        handler = child.node.id
        if not handler.startswith(CDK_HANDLER_ID_PREFIXES) or not _first_time(stack, f"handler:{handler}"):
            continue
        _skip_checkov_on_handler(child, bucket_deployment=handler.startswith(BUCKET_DEPLOYMENT_HANDLER))
        if handler.startswith(VPC_DEFAULT_SG_HANDLER):
            continue  # a CfnResource-level provider: cdk-nag raises nothing on it
        acknowledge(
            child,
            {
                f"AwsSolutions-IAM4[Policy::{BASIC_EXECUTION_POLICY}]": (
                    "CDK-provided custom-resource handler (BucketDeployment/AwsCustomResource): the CDK attaches "
                    "the AWS managed basic-execution policy and offers no way to replace it."
                ),
                "AwsSolutions-L1": (
                    "CDK-provided custom-resource handler: its runtime is pinned by the aws-cdk-lib release "
                    "and moves forward when aws-cdk-lib is upgraded."
                ),
            },
        )
        if handler.startswith(BUCKET_DEPLOYMENT_HANDLER):
            acknowledge_wildcards(
                child,
                [*BUCKET_GRANT_ACTIONS, "Resource::arn:*:s3:::cdk-*-assets-*/*"],
                "CDK-provided BucketDeployment handler: it reads any object of the CDK bootstrap asset bucket and "
                "writes its destination prefix; the CDK grants these bucket-level wildcard actions itself. Each "
                "destination bucket is acknowledged by the construct that deploys into it.",
            )


def _skip_checkov_on_handler(handler: IConstruct, *, bucket_deployment: bool) -> None:
    for node in handler.node.find_all():
        if isinstance(node, CfnResource) and node.cfn_resource_type == "AWS::Lambda::Function":
            skip_checks(node, CDK_BUCKET_DEPLOYMENT_FUNCTION if bucket_deployment else CDK_HANDLER_FUNCTION)
        elif isinstance(node, CfnResource) and node.cfn_resource_type == "AWS::Logs::LogGroup":
            skip_checks(node, CDK_HANDLER_LOG_GROUP)


def acknowledge_deployment_destination(deployment: Any, bucket: Any) -> None:
    """Acknowledge the wildcard a BucketDeployment gives its (shared, stack-wide) handler role on
    ``bucket``'s objects."""
    pattern = bucket_objects_pattern(bucket)
    if not _first_time(Stack.of(deployment), f"destination:{deployment.handler_role.node.path}:{pattern}"):
        return
    acknowledge_wildcards(
        deployment.handler_role,
        [pattern],
        "BucketDeployment copies files into this bucket under a prefix whose file names change with the "
        "content (prune removes stale ones), so it needs every object of the bucket. Only the platform stack "
        "deploys into it; model stacks publish their configuration through PipelineConfigPublisher.",
    )


def bucket_objects_pattern(bucket: Any) -> str:
    """The IAM5 pattern of "every object in ``bucket``", for buckets defined here or imported."""
    child = bucket.node.default_child
    if child is not None:
        return f"Resource::<{Stack.of(bucket).get_logical_id(child)}.Arn>/*"
    return f"Resource::arn:*:s3:::{bucket.bucket_name}/*"
