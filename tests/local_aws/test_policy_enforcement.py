"""Local AWS refuses what AWS refuses: requests are authorized against the caller's identity
policies, the resource's policy and the request's context, and fail with each service's error
code and AWS's message (principal, action, resource). Services act as AWS's services do: SageMaker
as the job's role (image pull, volume-key grant, logs, artifacts), CloudWatch as
cloudwatch.amazonaws.com when an alarm publishes to SNS.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from local_aws_helpers import IMAGE, training_request, wait_for

from local_aws.iam.web_identity import mint
from local_aws.roles import trust_policy

pytestmark = pytest.mark.integration
ACCOUNT = "123456789012"


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def make_role(iam, name: str, *statements: dict[str, Any], service: str = "lambda.amazonaws.com", trust=None) -> str:
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust or trust_policy(service)))["Role"][
        "Arn"
    ]
    if statements:
        iam.put_role_policy(RoleName=name, PolicyName="permissions", PolicyDocument=policy(*statements))
    return arn


def session_of(aws, credentials: dict[str, str]):
    return boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name="us-east-1",
    )


def error_of(call) -> dict[str, Any]:
    with pytest.raises(ClientError) as raised:
        call()
    return {**raised.value.response["Error"], "status": raised.value.response["ResponseMetadata"]["HTTPStatusCode"]}


@pytest.fixture
def iam(aws):
    return boto3.client("iam")


def test_denied_calls_fail_with_each_services_code_and_name_principal_action_resource(aws, iam, s3, unique):
    bucket = unique("denied")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="data/x.csv", Body=b"1")
    role = make_role(
        iam,
        unique("reader"),
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/data/*"},
    )
    session = session_of(aws, aws.service_credentials(role, "lambda.amazonaws.com"))
    assert session.client("s3").get_object(Bucket=bucket, Key="data/x.csv")["Body"].read() == b"1"
    caller = f"arn:aws:sts::{ACCOUNT}:assumed-role/{role.rsplit('/', 1)[-1]}/lambda"

    s3_error = error_of(lambda: session.client("s3").put_object(Bucket=bucket, Key="data/y.csv", Body=b"2"))
    assert (s3_error["Code"], s3_error["status"]) == ("AccessDenied", 403)
    assert s3_error["Message"] == (
        f"User: {caller} is not authorized to perform: s3:PutObject on resource: arn:aws:s3:::{bucket}/data/y.csv "
        "because no identity-based policy allows the s3:PutObject action"
    )
    topic = f"arn:aws:sns:us-east-1:{ACCOUNT}:{unique('topic')}"
    assert error_of(lambda: session.client("sns").publish(TopicArn=topic, Message="m"))["Code"] == "AuthorizationError"
    sagemaker_error = error_of(lambda: session.client("sagemaker").list_training_jobs())
    assert sagemaker_error["Code"] == "AccessDeniedException"
    assert "sagemaker:ListTrainingJobs" in sagemaker_error["Message"]
    metrics = error_of(
        lambda: session.client("cloudwatch").put_metric_data(
            Namespace="X", MetricData=[{"MetricName": "m", "Value": 1}]
        )
    )
    assert metrics["Code"] == "AccessDenied"


def test_an_access_key_nobody_was_issued_is_refused(aws):
    stranger = boto3.client("s3", aws_access_key_id="AKIAIOSFODNN7EXAMPLE", aws_secret_access_key="x")
    assert error_of(stranger.list_buckets)["Code"] == "InvalidClientTokenId"


def test_an_operation_without_an_authorization_rule_is_refused_for_roles_not_for_the_account(aws, iam, unique):
    role = make_role(iam, unique("any"), {"Effect": "Allow", "Action": "*", "Resource": "*"})
    session = session_of(aws, aws.service_credentials(role, "lambda.amazonaws.com"))
    refused = error_of(lambda: session.client("sagemaker").list_notebook_instances())
    assert "no authorization rule for sagemaker:ListNotebookInstances" in refused["Message"]
    assert "local_aws/iam/actions.py" in refused["Message"]
    boto3.client("sagemaker").list_notebook_instances()  # the account root is not refused


def test_a_service_gets_a_roles_session_only_if_the_trust_policy_allows_it_with_its_source(aws, iam, unique):
    from local_aws import LocalAwsError

    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sagemaker.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": ACCOUNT},
                    "ArnLike": {"aws:SourceArn": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:*"},
                },
            }
        ],
    }
    role = make_role(iam, unique("deputy"), trust=trust)
    job = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:training-job/x"
    assert aws.service_credentials(role, "sagemaker.amazonaws.com", source_arn=job)["AccessKeyId"].startswith("ASIA")
    with pytest.raises(LocalAwsError, match="sts:AssumeRole"):
        aws.service_credentials(
            role, "sagemaker.amazonaws.com", source_arn="arn:aws:sagemaker:us-east-1:999999999999:training-job/x"
        )
    with pytest.raises(LocalAwsError, match="sts:AssumeRole"):
        aws.service_credentials(role, "lambda.amazonaws.com", source_arn=job)


def test_web_identity_needs_a_registered_issuer_its_audience_and_a_trusted_subject(aws, iam, unique):
    host = f"{unique('gitlab')}.example.com"
    iam.create_open_id_connect_provider(
        Url=f"https://{host}", ClientIDList=["sts.amazonaws.com"], ThumbprintList=["0" * 40]
    )
    provider = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{host}"
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{host}:aud": "sts.amazonaws.com",
                        f"{host}:sub": "project_path:ml/mlops:ref_type:branch:ref:models/a",
                    }
                },
            }
        ],
    }
    role = make_role(iam, unique("ci"), trust=trust)
    sts = boto3.client("sts", config=Config(signature_version=UNSIGNED))

    def assume(sub: str, *, iss: str = f"https://{host}", aud: str = "sts.amazonaws.com"):
        token = mint({"iss": iss, "aud": aud, "sub": sub})
        return sts.assume_role_with_web_identity(RoleArn=role, RoleSessionName="ci", WebIdentityToken=token)

    assert assume("project_path:ml/mlops:ref_type:branch:ref:models/a")["Credentials"]["AccessKeyId"]
    assert error_of(lambda: assume("project_path:ml/mlops:ref_type:branch:ref:models/b"))["Code"] == "AccessDenied"
    assert error_of(lambda: assume("x", aud="someone-else"))["Code"] == "InvalidIdentityToken"
    assert error_of(lambda: assume("x", iss="https://unknown.example.com"))["Code"] == "InvalidIdentityToken"


def test_a_trust_condition_on_a_gitlab_claim_aws_does_not_evaluate_never_matches(aws, iam, unique):
    """AWS STS offers only aud and sub (and amr, azp, email, oaud) of a generic OIDC issuer's token
    as condition keys; GitLab's environment/ref_protected claims are not among them, so a trust
    policy that requires one refuses every token, even one that carries the claim."""
    host = f"{unique('gitlab')}.example.com"
    iam.create_open_id_connect_provider(
        Url=f"https://{host}", ClientIDList=["sts.amazonaws.com"], ThumbprintList=["0" * 40]
    )
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{host}"},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": {f"{host}:aud": "sts.amazonaws.com", f"{host}:environment": "prod"}},
            }
        ],
    }
    role = make_role(iam, unique("env-ci"), trust=trust)
    token = mint({"iss": f"https://{host}", "aud": "sts.amazonaws.com", "sub": "x", "environment": "prod"})
    sts = boto3.client("sts", config=Config(signature_version=UNSIGNED))
    refused = error_of(
        lambda: sts.assume_role_with_web_identity(RoleArn=role, RoleSessionName="ci", WebIdentityToken=token)
    )
    assert refused["Code"] == "AccessDenied"


def test_writing_to_a_kms_encrypted_bucket_needs_the_key_as_s3_uses_it_for_the_caller(aws, iam, s3, unique):
    kms = boto3.client("kms")
    key = kms.create_key()["KeyMetadata"]["Arn"]  # the default key policy delegates to the account
    bucket = unique("encrypted")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}}]
        },
    )
    put = {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/*"}
    without_key = session_of(aws, aws.service_credentials(make_role(iam, unique("nokey"), put), "lambda.amazonaws.com"))
    denied = error_of(lambda: without_key.client("s3").put_object(Bucket=bucket, Key="k", Body=b"x"))
    assert f"kms:GenerateDataKey on resource: {key}" in denied["Message"]
    use_key = {
        "Effect": "Allow",
        "Action": "kms:GenerateDataKey",
        "Resource": key,
        "Condition": {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}},
    }
    with_key = session_of(
        aws, aws.service_credentials(make_role(iam, unique("key"), put, use_key), "lambda.amazonaws.com")
    )
    with_key.client("s3").put_object(Bucket=bucket, Key="k", Body=b"x")


def _alarm_topic(aws, iam, unique, topic_policy: dict[str, Any] | None):
    sns, sqs, cloudwatch = boto3.client("sns"), boto3.client("sqs"), boto3.client("cloudwatch")
    topic = sns.create_topic(Name=unique("alerts"))["TopicArn"]
    if topic_policy is not None:
        sns.set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps(topic_policy))
    queue = sqs.create_queue(QueueName=unique("readback"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    alarm = unique("errors")
    cloudwatch.put_metric_alarm(
        AlarmName=alarm,
        MetricName="Errors",
        Namespace="X",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        AlarmActions=[topic],
    )
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="test")
    messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages", [])
    events = [e for e in aws.events() if e["kind"] == "AlarmAction" and e["name"] == alarm]
    return messages, events


def test_an_alarm_publishes_only_if_the_topic_policy_allows_cloudwatch(aws, iam, unique):
    ssl_only = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sns:Publish",
                "Resource": "*",
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }
    messages, events = _alarm_topic(aws, iam, unique, ssl_only)
    assert messages == []
    assert events[-1]["status"] == "Failed"
    assert "cloudwatch.amazonaws.com is not authorized to perform: sns:Publish" in events[-1]["detail"]

    allowed = json.loads(json.dumps(ssl_only))
    allowed["Statement"].append(
        {
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": "sns:Publish",
            "Resource": "*",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": ACCOUNT},
                "ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:*"},
            },
        }
    )
    messages, events = _alarm_topic(aws, iam, unique, allowed)
    assert events[-1]["status"] == "Published"
    notification = json.loads(json.loads(messages[0]["Body"])["Message"])
    assert notification["NewStateValue"] == "ALARM"


def test_a_training_job_runs_as_its_role(aws, iam, sm, buckets, unique):
    kms = boto3.client("kms")
    key = kms.create_key()["KeyMetadata"]["Arn"]
    read_write = {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket"], "Resource": "*"}
    pull = {"Effect": "Allow", "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], "Resource": "*"}
    logs = {
        "Effect": "Allow",
        "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": "*",
    }
    grant = {
        "Effect": "Allow",
        "Action": "kms:CreateGrant",
        "Resource": key,
        "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
    }

    attempts = itertools.count()

    def train(*statements, volume_key: str | None = key) -> dict[str, Any]:
        name = f"{unique('job')}-{next(attempts)}"
        role = make_role(iam, name, *statements, service="sagemaker.amazonaws.com")
        resources = {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10}
        if volume_key:
            resources["VolumeKmsKeyId"] = volume_key
        sm.create_training_job(**training_request(name, buckets, RoleArn=role, ResourceConfig=resources))
        return wait_for(lambda: sm.describe_training_job(TrainingJobName=name), "TrainingJobStatus", {"InProgress"})

    assert train(read_write, pull, logs, grant)["TrainingJobStatus"] == "Completed"
    no_grant = train(read_write, pull, logs)
    assert no_grant["TrainingJobStatus"] == "Failed"
    assert "kms:CreateGrant" in no_grant["FailureReason"] and key in no_grant["FailureReason"]
    no_pull = train(read_write, logs, grant)
    assert "ecr:BatchGetImage" in no_pull["FailureReason"] and IMAGE in no_pull["FailureReason"]

    # Without logs permission the job still runs; its logs are never written, as on AWS.
    quiet = train(read_write, pull, grant)
    assert quiet["TrainingJobStatus"] == "Completed"
    streams = boto3.client("logs").describe_log_streams(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=quiet["TrainingJobName"]
    )["logStreams"]
    assert streams == []

    wrong_trust = make_role(iam, unique("lambda-only"), read_write)
    refused = error_of(lambda: sm.create_training_job(**training_request(unique("x"), buckets, RoleArn=wrong_trust)))
    assert refused["Code"] == "ValidationException" and "Could not assume role" in refused["Message"]


def test_the_authorization_log_counts_distinct_checks_and_denials(aws, iam, unique):
    role = make_role(iam, unique("counted"), {"Effect": "Allow", "Action": "sagemaker:ListModels", "Resource": "*"})
    session = session_of(aws, aws.service_credentials(role, "lambda.amazonaws.com"))
    for _ in range(3):
        session.client("sagemaker").list_models()
    error_of(lambda: session.client("sagemaker").list_endpoints())
    summary = aws.authorization()
    mine = [c for c in summary["checks"] if role.rsplit("/", 1)[-1] in c["principal"]]
    assert {(c["action"], c["count"], c["denied"]) for c in mine} == {
        ("sagemaker:ListModels", 3, 0),
        ("sagemaker:ListEndpoints", 1, 1),
    }
