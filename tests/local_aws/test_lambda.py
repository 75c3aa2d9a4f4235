"""Local Lambda: function URLs with auth type AWS_IAM, aliases, Invoke and GetFunctionUrlConfig,
authorized by local IAM as AWS Lambda documents it ("Control access to Lambda function URLs": a
caller needs lambda:InvokeFunctionUrl with lambda:FunctionUrlAuthType AWS_IAM and, for URLs made
since October 2025, lambda:InvokeFunction too, on the function or alias the URL belongs to; an
unsigned request to an AWS_IAM URL is refused with 403; the function receives the signed caller in
requestContext.authorizer.iam and the alias in context.invoked_function_arn)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import boto3
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from local_aws.roles import trust_policy

pytestmark = pytest.mark.integration
ACCOUNT = "123456789012"
CODE = str(Path(__file__).with_name("lambda_fixture"))


def make_role(iam, name, statements, service=None):
    trust = trust_policy(service) if service else trust_policy("lambda.amazonaws.com")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    if statements:
        iam.put_role_policy(
            RoleName=name,
            PolicyName="p",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
        )
    return arn


def signed_post(url, credentials, body=b'{"hello": 1}'):
    request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(
        Credentials(credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]),
        "lambda",
        "us-east-1",
    ).add_auth(request)
    prepared = request.prepare()
    return requests.post(prepared.url, data=body, headers=dict(prepared.headers), timeout=60)


@pytest.fixture
def function(aws, unique):
    iam = boto3.client("iam")
    name = unique("echo")
    role = make_role(iam, unique("fn-role"), [{"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}])
    described = aws.register_function(
        {
            "name": name,
            "handler": "echo_fn.handler",
            "code_dirs": [CODE],
            "role_arn": role,
            "environment": {"SETTING": "from-the-template"},
            "aliases": ["team-a", "team-b"],
            "urls": [{"qualifier": "team-a", "auth_type": "AWS_IAM"}, {"qualifier": "team-b", "auth_type": "AWS_IAM"}],
        }
    )
    return name, described, role


def caller(aws, iam, name, alias_arn, *, with_invoke=True):
    statements = [
        {
            "Effect": "Allow",
            "Action": "lambda:InvokeFunctionUrl",
            "Resource": alias_arn,
            "Condition": {"StringEquals": {"lambda:FunctionUrlAuthType": "AWS_IAM"}},
        }
    ]
    if with_invoke:
        statements.append(
            {
                "Effect": "Allow",
                "Action": ["lambda:InvokeFunction", "lambda:GetFunctionUrlConfig"],
                "Resource": alias_arn,
            }
        )
    role = make_role(iam, name, statements, service="ec2.amazonaws.com")
    return aws.service_credentials(role, "ec2.amazonaws.com", session_name="ci-job")


def test_a_url_runs_the_function_as_its_role_with_the_signed_caller_and_the_alias(aws, function, unique):
    name, described, role = function
    iam = boto3.client("iam")
    alias_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}:team-a"
    credentials = caller(aws, iam, unique("team-a-ci"), alias_arn)
    response = signed_post(described["Urls"]["team-a"], credentials)
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["invoked_function_arn"] == alias_arn
    assert answer["runs_as"].startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/{role.rsplit('/', 1)[1]}/")
    assert answer["setting"] == "from-the-template"
    assert answer["authorizer"]["iam"]["userArn"].endswith("/ci-job")
    assert answer["authorizer"]["iam"]["accessKey"] == credentials["AccessKeyId"]
    assert json.loads(answer["body"]) == {"hello": 1}


def test_another_alias_and_an_unsigned_request_are_refused_before_the_function_runs(aws, function, unique):
    name, described, _ = function
    iam = boto3.client("iam")
    credentials = caller(aws, iam, unique("team-a-ci"), f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}:team-a")
    refused = signed_post(described["Urls"]["team-b"], credentials)
    assert refused.status_code == 403
    assert (
        f"lambda:InvokeFunctionUrl on resource: arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}:team-b"
        in (refused.json()["Message"])
    )
    unsigned = requests.post(described["Urls"]["team-a"], data=b"{}", timeout=10)
    assert (unsigned.status_code, unsigned.json()) == (403, {"Message": "Forbidden"})


def test_invoke_function_url_alone_is_not_enough_since_october_2025(aws, function, unique):
    name, described, _ = function
    alias_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}:team-a"
    credentials = caller(aws, boto3.client("iam"), unique("old-ci"), alias_arn, with_invoke=False)
    refused = signed_post(described["Urls"]["team-a"], credentials)
    assert refused.status_code == 403 and "lambda:InvokeFunction on resource" in refused.json()["Message"]


def test_get_function_url_config_and_invoke_through_the_api(aws, function, unique):
    name, described, _ = function
    alias_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}:team-a"
    credentials = caller(aws, boto3.client("iam"), unique("api-ci"), alias_arn)
    client = boto3.client(
        "lambda",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    config = client.get_function_url_config(FunctionName=name, Qualifier="team-a")
    assert config["FunctionUrl"] == described["Urls"]["team-a"] and config["AuthType"] == "AWS_IAM"
    answer = json.loads(client.invoke(FunctionName=name, Qualifier="team-a", Payload=b"{}")["Payload"].read())
    assert answer["invoked_function_arn"] == alias_arn and answer["authorizer"] is None  # no caller identity
    with pytest.raises(client.exceptions.ClientError, match="AccessDenied"):
        client.get_function_url_config(FunctionName=name, Qualifier="team-b")


def test_sns_retries_a_failed_asynchronous_invocation_as_lambda_does(aws, unique):
    """Lambda runs a failed asynchronous invocation "two more times, with a one-minute wait between
    the first two attempts, and two minutes between the second and third" (Lambda Developer Guide,
    "Error handling and automatic retries"); the waits come from the scenario."""
    iam, sns = boto3.client("iam"), boto3.client("sns")
    name = unique("flaky")
    role = make_role(iam, unique("fn-role"), [])
    topic = sns.create_topic(Name=unique("topic"))["TopicArn"]
    function_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "lambda:InvokeFunction",
                "Resource": function_arn,
                "Condition": {"ArnLike": {"AWS:SourceArn": topic}},
            }
        ],
    }
    aws.register_function(
        {"name": name, "handler": "flaky_fn.handler", "code_dirs": [CODE], "role_arn": role, "policy": policy}
    )
    aws.update_scenario({"lambda": {"async_retry_delays_seconds": [0.2, 0.2]}})
    sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=function_arn)
    sns.publish(TopicArn=topic, Message="hello")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        deliveries = [e for e in aws.events() if e["kind"] == "SnsDelivery" and e["name"] == function_arn]
        if any(e["status"] == "Delivered" for e in deliveries):
            break
        time.sleep(0.2)
    assert [e["status"] for e in deliveries] == ["Retrying", "Delivered"]
    assert "again in 0.2 s" in deliveries[0]["detail"] and '"attempt": 2' in deliveries[1]["detail"]
