"""The environment's customer-managed KMS key."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from mlops_core.platform_names import PlatformNames


class PlatformKey(Construct):
    """One rotating KMS key for the environment's buckets, topic, logs and MWAA.

    Model-pipeline stacks find it by alias (``names.kms_alias``), never by export. The key is
    retained on stack deletion: deleting it would make every retained bucket unreadable.
    """

    def __init__(self, scope: Construct, id: str, *, names: PlatformNames) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        self.key = kms.Key(
            self,
            "Key",
            alias=names.kms_alias,
            description=f"MLOps platform {names.environment}: data, artifacts, notifications, logs",
            enable_key_rotation=True,
            # RETAIN even when the first create rolls back: a bucket CloudFormation could not delete
            # then (it already held objects) stays encrypted with this key. Unlike the buckets, the
            # key has no fixed name (its alias is deleted with the rollback), so it never blocks a retry.
            removal_policy=RemovalPolicy.RETAIN,
        )
        account_log_groups = f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:*"
        # CloudWatch Logs encrypts the platform's log groups (MWAA, Lambda, endpoints, Firehose)
        # with this key; it may only use it for log groups of this account and region.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=[
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                resources=["*"],
                conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": account_log_groups}},
            )
        )
        # CloudWatch alarms publish to the encrypted alerts topic.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )


def key_grant_statement(names: PlatformNames, *, partition: str = "aws") -> iam.PolicyStatement:
    """kms:CreateGrant on the platform key (found by alias), only for grants an AWS service creates
    for its own resources on the caller's behalf (kms:GrantIsForAWSResource).

    SageMaker encrypts training and processing volumes (``VolumeKmsKeyId``) and endpoint volumes
    (an endpoint config's ``KmsKeyId``) through a grant: the job's role needs kms:CreateGrant
    (https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html, "If you specify a volume
    KMS key ... kms:CreateGrant"), and so does whoever calls CreateEndpoint with such a config
    (https://docs.aws.amazon.com/sagemaker/latest/dg/api-permissions-reference.html).
    """
    return iam.PolicyStatement(
        actions=["kms:CreateGrant"],
        resources=[f"arn:{partition}:kms:{names.region}:{names.account}:key/*"],
        conditions={
            "ForAnyValue:StringEquals": {"kms:ResourceAliases": names.kms_alias},
            "Bool": {"kms:GrantIsForAWSResource": "true"},
        },
    )


def key_usage_statement(
    names: PlatformNames, *, partition: str = "aws", decrypt_only: bool = False
) -> iam.PolicyStatement:
    """IAM statement for the platform key, found by its alias (no reference to the key needed)."""
    actions = ["kms:Decrypt", "kms:DescribeKey"]
    if not decrypt_only:
        actions += ["kms:Encrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"]
    return iam.PolicyStatement(
        actions=actions,
        resources=[f"arn:{partition}:kms:{names.region}:{names.account}:key/*"],
        conditions={"ForAnyValue:StringEquals": {"kms:ResourceAliases": names.kms_alias}},
    )
