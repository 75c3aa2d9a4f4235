"""LogForwarder: Firehose HTTP destination, failed-records bucket, least-privilege roles, subscriptions."""

from __future__ import annotations

import json
import os

# The built-in CloudFormation validation plugin costs ~2.5 s per synth; cfn-lint runs below instead.
os.environ.setdefault("CDK_VALIDATION", "false")

import pytest  # noqa: E402
from aws_cdk import App, Duration, Environment, Stack, Validations  # noqa: E402
from aws_cdk import aws_kms as kms  # noqa: E402
from aws_cdk import aws_logs as logs  # noqa: E402
from aws_cdk import aws_s3 as s3  # noqa: E402
from aws_cdk.assertions import Match, Template  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402
from cfnlint.api import lint  # noqa: E402

from mlops_constructs.log_forwarder import (  # noqa: E402
    LogForwarder,
    delivery_error_log_group_name,
    delivery_stream_arn,
    logs_to_firehose_role_arn,
)
from mlops_core.platform_names import PlatformNames  # noqa: E402

ACCOUNT, REGION = "111111111111", "eu-west-1"
NAMES = PlatformNames(environment="dev", account=ACCOUNT, region=REGION)
URL = "https://logs.example.wavefront.com/firehose"
SECRET = "mlops/dev/wavefront-token"  # noqa: S105 - a secret name, not a value


def make_stack(app: App | None = None, id: str = "Logs") -> Stack:
    return Stack(app or App(), id, env=Environment(account=ACCOUNT, region=REGION))


def build(stack: Stack, **overrides) -> tuple[LogForwarder, kms.Key]:
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    props = dict(
        names=NAMES,
        destination_url=URL,
        destination_name="Wavefront",
        access_key_secret_name=SECRET,
        key=key,
        failed_records_retention=Duration.days(30),
    )
    props.update(overrides)
    return LogForwarder(stack, "Forwarder", **props), key


def only(template: Template, type_: str, props: dict | None = None) -> tuple[str, dict]:
    found = template.find_resources(type_, {"Properties": props} if props else {})
    assert len(found) == 1, f"expected one {type_}, found {len(found)}"
    return next(iter(found.items()))


@pytest.fixture(scope="module")
def forwarder() -> tuple[LogForwarder, Stack, Template]:
    stack = make_stack()
    fwd, _ = build(stack)
    mwaa_logs = logs.LogGroup.from_log_group_name(stack, "MwaaTask", "airflow-mlops-dev-Task")
    fwd.forward(mwaa_logs, id="MwaaTaskLogs")
    LogForwarder.subscribe(stack, "EndpointLogs", names=NAMES, log_group_name="/aws/sagemaker/Endpoints/x")
    return fwd, stack, Template.from_stack(stack)


def logical_id(stack: Stack, construct) -> str:
    return stack.get_logical_id(construct.node.default_child)


def test_delivery_stream_sends_to_the_http_endpoint_with_the_secret(forwarder):
    fwd, stack, template = forwarder
    role = {"Fn::GetAtt": [logical_id(stack, fwd.delivery_role), "Arn"]}
    template.has_resource_properties(
        "AWS::KinesisFirehose::DeliveryStream",
        {
            "DeliveryStreamName": NAMES.log_delivery_stream,
            "DeliveryStreamType": "DirectPut",
            "HttpEndpointDestinationConfiguration": Match.object_like(
                {
                    "EndpointConfiguration": {"Url": URL, "Name": "Wavefront"},
                    "SecretsManagerConfiguration": {
                        "Enabled": True,
                        "SecretARN": {
                            "Fn::Join": [
                                "",
                                Match.array_with([Match.string_like_regexp(f":secret:{SECRET}$")]),
                            ]
                        },
                        "RoleARN": role,
                    },
                    "RequestConfiguration": Match.object_like({"ContentEncoding": "GZIP"}),
                    "RoleARN": role,
                    "S3BackupMode": "FailedDataOnly",
                }
            ),
        },
    )
    # The access key never appears in the template.
    _, stream = only(template, "AWS::KinesisFirehose::DeliveryStream")
    assert "AccessKey" not in stream["Properties"]["HttpEndpointDestinationConfiguration"]["EndpointConfiguration"]


def test_delivery_stream_is_encrypted_with_the_platform_key(forwarder):
    _, stack, template = forwarder
    key_id = template.find_resources("AWS::KMS::Key").popitem()[0]
    _, stream = only(template, "AWS::KinesisFirehose::DeliveryStream")
    assert stream["Properties"]["DeliveryStreamEncryptionConfigurationInput"] == {
        "KeyType": "CUSTOMER_MANAGED_CMK",
        "KeyARN": {"Fn::GetAtt": [key_id, "Arn"]},
    }
    s3_config = stream["Properties"]["HttpEndpointDestinationConfiguration"]["S3Configuration"]
    assert s3_config["EncryptionConfiguration"] == {
        "KMSEncryptionConfig": {"AWSKMSKeyARN": {"Fn::GetAtt": [key_id, "Arn"]}}
    }


def test_failed_records_go_to_the_failed_records_bucket(forwarder):
    fwd, stack, template = forwarder
    _, stream = only(template, "AWS::KinesisFirehose::DeliveryStream")
    s3_config = stream["Properties"]["HttpEndpointDestinationConfiguration"]["S3Configuration"]
    assert s3_config["BucketARN"] == {"Fn::GetAtt": [logical_id(stack, fwd.failed_records_bucket), "Arn"]}
    assert s3_config["CompressionFormat"] == "GZIP"
    assert "!{firehose:error-output-type}" in s3_config["ErrorOutputPrefix"]


def test_failed_records_bucket_is_encrypted_private_versioned_expiring_and_retained(forwarder):
    fwd, stack, template = forwarder
    key_id = template.find_resources("AWS::KMS::Key").popitem()[0]
    bucket_id = logical_id(stack, fwd.failed_records_bucket)
    bucket = template.to_json()["Resources"][bucket_id]
    # Retained on delete and replacement; only the rollback of its own create removes it.
    assert bucket["DeletionPolicy"] == "RetainExceptOnCreate" and bucket["UpdateReplacePolicy"] == "Retain"
    props = bucket["Properties"]
    sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert sse["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": {"Fn::GetAtt": [key_id, "Arn"]},
    }
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    (rule,) = props["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == 30 and rule["Status"] == "Enabled"
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 7}
    template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": bucket_id},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "s3:*",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            },
        },
    )


def test_failed_records_bucket_logs_access_when_given_a_log_bucket():
    stack = make_stack()
    access_logs = s3.Bucket.from_bucket_name(stack, "AccessLogs", NAMES.access_logs_bucket)
    fwd, _ = build(stack, access_logs_bucket=access_logs)
    template = Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "LoggingConfiguration": {
                "DestinationBucketName": NAMES.access_logs_bucket,
                "LogFilePrefix": Match.any_value(),
            },
        },
    )


def test_delivery_errors_are_logged_with_retention(forwarder):
    fwd, stack, template = forwarder
    group_id, group = only(template, "AWS::Logs::LogGroup")
    assert group["Properties"]["LogGroupName"] == delivery_error_log_group_name(NAMES)
    assert group["Properties"]["RetentionInDays"] == 365
    assert "KmsKeyId" in group["Properties"]
    _, stream = only(template, "AWS::KinesisFirehose::DeliveryStream")
    destination = stream["Properties"]["HttpEndpointDestinationConfiguration"]
    for options in (
        destination["CloudWatchLoggingOptions"],
        destination["S3Configuration"]["CloudWatchLoggingOptions"],
    ):
        assert options["Enabled"] is True
        assert options["LogGroupName"] == {"Ref": group_id}
    streams = {s["Properties"]["LogStreamName"] for s in template.find_resources("AWS::Logs::LogStream").values()}
    assert streams == {
        destination["CloudWatchLoggingOptions"]["LogStreamName"],
        destination["S3Configuration"]["CloudWatchLoggingOptions"]["LogStreamName"],
    }


def test_key_policy_lets_cloudwatch_logs_use_the_key_only_for_the_error_log_group(forwarder):
    _, _, template = forwarder
    template.has_resource_properties(
        "AWS::KMS::Key",
        {
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Principal": {"Service": f"logs.{REGION}.amazonaws.com"},
                                "Condition": {
                                    "ArnEquals": {
                                        "kms:EncryptionContext:aws:logs:arn": {
                                            "Fn::Join": [
                                                "",
                                                Match.array_with(
                                                    [
                                                        Match.string_like_regexp(
                                                            f"log-group:{delivery_error_log_group_name(NAMES)}$"
                                                        ),
                                                    ]
                                                ),
                                            ]
                                        }
                                    }
                                },
                            }
                        )
                    ]
                )
            }
        },
    )


def _statements(template: Template, role_logical_id: str) -> list[dict]:
    statements = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role_logical_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def test_delivery_role_is_scoped_to_named_resources(forwarder):
    fwd, stack, template = forwarder
    role_id = logical_id(stack, fwd.delivery_role)
    role = template.to_json()["Resources"][role_id]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "firehose.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"sts:ExternalId": ACCOUNT}}
    statements = _statements(template, role_id)
    assert statements
    bucket_id = logical_id(stack, fwd.failed_records_bucket)
    actions = set()
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert "*" not in _as_list(statement["Resource"]), statement
        actions |= set(_as_list(statement["Action"]))
        rendered = json.dumps(statement["Resource"])
        if any(a.startswith("s3:") for a in _as_list(statement["Action"])):
            assert bucket_id in rendered
        if any(a.startswith("logs:") for a in _as_list(statement["Action"])):
            assert delivery_error_log_group_name(NAMES) in rendered
        if any(a.startswith("secretsmanager:") for a in _as_list(statement["Action"])):
            assert f":secret:{SECRET}-??????" in rendered
        if any(a.startswith("kms:") for a in _as_list(statement["Action"])):
            # Only through S3 for this bucket.
            assert statement["Condition"]["StringEquals"] == {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}
    assert {
        "s3:PutObject",
        "logs:PutLogEvents",
        "secretsmanager:GetSecretValue",
        "kms:GenerateDataKey",
    } <= actions
    assert not any(a.endswith("*") and a.startswith(("s3:", "kms:", "logs:", "iam:")) for a in actions)


def test_logs_role_is_named_trusts_regional_logs_for_this_account_and_only_puts_records(forwarder):
    fwd, stack, template = forwarder
    role_id = logical_id(stack, fwd.logs_role)
    role = template.to_json()["Resources"][role_id]["Properties"]
    assert role["RoleName"] == NAMES.logs_to_firehose_role
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": f"logs.{REGION}.amazonaws.com"}
    source_arn = json.dumps(trust["Condition"]["StringLike"]["aws:SourceArn"])
    assert f":logs:{REGION}:{ACCOUNT}:*" in source_arn
    (statement,) = _statements(template, role_id)
    assert sorted(statement["Action"]) == ["firehose:PutRecord", "firehose:PutRecordBatch"]
    stream_id = (
        logical_id(stack, fwd.delivery_stream) if False else only(template, "AWS::KinesisFirehose::DeliveryStream")[0]
    )
    assert statement["Resource"] == {"Fn::GetAtt": [stream_id, "Arn"]}


def test_forward_subscribes_a_log_group_to_the_stream_after_the_role_policy(forwarder):
    fwd, stack, template = forwarder
    stream_id = only(template, "AWS::KinesisFirehose::DeliveryStream")[0]
    filters = template.find_resources(
        "AWS::Logs::SubscriptionFilter", {"Properties": {"LogGroupName": "airflow-mlops-dev-Task"}}
    )
    ((_, subscription),) = filters.items()
    assert subscription["Properties"]["DestinationArn"] == {"Fn::GetAtt": [stream_id, "Arn"]}
    assert subscription["Properties"]["RoleArn"] == {"Fn::GetAtt": [logical_id(stack, fwd.logs_role), "Arn"]}
    assert subscription["Properties"]["FilterPattern"] == ""
    # CloudWatch Logs test-writes to the stream on creation: the role and its policy come first.
    policy_ids = [
        k
        for k, p in template.find_resources("AWS::IAM::Policy").items()
        if {"Ref": logical_id(stack, fwd.logs_role)} in p["Properties"]["Roles"]
    ]
    assert set(policy_ids) <= set(subscription["DependsOn"])


def test_forward_accepts_a_filter_pattern():
    stack = make_stack()
    fwd, _ = build(stack, access_key_secret_name=None)
    group = logs.LogGroup.from_log_group_name(stack, "G", "/aws/lambda/mlops-dev-dag-trigger")
    fwd.forward(group, id="TriggerErrors", filter_pattern=logs.FilterPattern.any_term("ERROR", "Task timed out"))
    template = Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::Logs::SubscriptionFilter",
        {
            "LogGroupName": "/aws/lambda/mlops-dev-dag-trigger",
            "FilterPattern": '?"ERROR" ?"Task timed out"',
        },
    )


def test_subscribe_from_another_stack_uses_names_only(forwarder):
    _, _, template = forwarder
    template.has_resource_properties(
        "AWS::Logs::SubscriptionFilter",
        {
            "LogGroupName": "/aws/sagemaker/Endpoints/x",
            # The partition (aws, aws-cn, aws-us-gov) comes from the stack; account and region from the names.
            "DestinationArn": {
                "Fn::Join": [
                    "",
                    [
                        "arn:",
                        {"Ref": "AWS::Partition"},
                        f":firehose:{REGION}:{ACCOUNT}:deliverystream/{NAMES.log_delivery_stream}",
                    ],
                ]
            },
            "RoleArn": {
                "Fn::Join": [
                    "",
                    [
                        "arn:",
                        {"Ref": "AWS::Partition"},
                        f":iam::{ACCOUNT}:role/{NAMES.logs_to_firehose_role}",
                    ],
                ]
            },
            "FilterPattern": "",
        },
    )


def test_subscribe_in_a_separate_app_needs_no_export():
    """A model team's own CDK app: the subscription references the platform only by name."""
    app = App()
    stack = make_stack(app, "TeamStack")
    group = logs.LogGroup(
        stack,
        "EndpointLogs",
        log_group_name="/aws/sagemaker/Endpoints/churn--xgb",
        retention=logs.RetentionDays.ONE_MONTH,
    )
    subscription = LogForwarder.subscribe(stack, "Forward", names=NAMES, log_group_name=group.log_group_name)
    subscription.node.add_dependency(group)
    template = app.synth().get_stack_artifact("TeamStack").template
    assert "Outputs" not in template or not template["Outputs"]
    rendered = json.dumps(template)
    assert "Fn::ImportValue" not in rendered
    (sub,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::Logs::SubscriptionFilter"]
    # The stack's partition (aws, aws-cn, aws-us-gov) is resolved at deploy time.
    assert NAMES.log_delivery_stream in json.dumps(sub["Properties"]["DestinationArn"])
    assert delivery_stream_arn(NAMES) == (
        f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/{NAMES.log_delivery_stream}"
    )
    assert logs_to_firehose_role_arn(NAMES, "aws-cn").startswith("arn:aws-cn:iam::")


def test_no_secret_means_no_secrets_manager_access():
    stack = make_stack()
    build(stack, access_key_secret_name=None)
    template = Template.from_stack(stack)
    _, stream = only(template, "AWS::KinesisFirehose::DeliveryStream")
    assert "SecretsManagerConfiguration" not in stream["Properties"]["HttpEndpointDestinationConfiguration"]
    assert "secretsmanager" not in json.dumps(template.find_resources("AWS::IAM::Policy"))


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"destination_url": "http://insecure.example.com"}, "https"),
        ({"buffering_size_mib": 128}, "buffering_size_mib"),
    ],
)
def test_rejects_bad_destination_settings(overrides, message):
    stack = make_stack()
    with pytest.raises(ValueError, match=message):
        build(stack, **overrides)


def _nag_app(**overrides) -> tuple[App, Stack]:
    app = App()
    stack = make_stack(app)
    fwd, _ = build(stack, **overrides)
    fwd.forward(logs.LogGroup.from_log_group_name(stack, "MwaaTask", "airflow-mlops-dev-Task"), id="MwaaTaskLogs")
    LogForwarder.subscribe(stack, "EndpointLogs", names=NAMES, log_group_name="/aws/sagemaker/Endpoints/x")
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack


@pytest.mark.parametrize("with_access_logs", [False, True])
def test_cdk_nag_and_cfn_lint_are_clean(with_access_logs):
    app, stack = _nag_app()
    if with_access_logs:
        app, stack = App(), None
        stack = make_stack(app)
        build(
            stack,
            access_logs_bucket=s3.Bucket.from_bucket_name(stack, "AccessLogs", NAMES.access_logs_bucket),
            access_key_secret_name=None,
        )
        Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    template = app.synth().get_stack_artifact(stack.artifact_id).template  # raises on any nag finding
    matches = lint(json.dumps(template), regions=[REGION])
    assert [str(m) for m in matches] == []


def test_cdk_nag_is_active_in_these_tests():
    """Guards the check above: an unacknowledged finding must fail synth."""
    app, stack = _nag_app()
    s3.Bucket(stack, "Careless")  # no SSL-only policy, no access logs
    with pytest.raises(Exception, match="ValidationFailed"):
        app.synth()
