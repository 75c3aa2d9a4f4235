from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Match
from iam_statements import render, wildcard_match
from synth_helpers import new_stack, template_of

from mlops_constructs.notifications import Notifications


def test_topic_is_encrypted_ssl_only_with_email_subscriptions_and_slack_secret_reference():
    stack = new_stack()
    notifications = Notifications(
        stack,
        "N",
        topic_name="mlops-dev-alerts",
        key=kms.Key(stack, "Key", enable_key_rotation=True),
        emails=["a@example.com", "b@example.com"],
        slack_webhook_secret_name="mlops/dev/slack-webhook",
    )
    role = iam.Role(stack, "Reader", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    notifications.grant_read_slack_webhook(role)
    template = template_of(stack)
    template.has_resource_properties(
        "AWS::SNS::Topic", {"TopicName": "mlops-dev-alerts", "KmsMasterKeyId": Match.any_value()}
    )
    template.resource_count_is("AWS::SNS::Subscription", 2)
    template.has_resource_properties("AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "a@example.com"})
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                )
            }
        },
    )
    # The webhook is only referenced: no secret value in the template.
    template.resource_count_is("AWS::SecretsManager::Secret", 0)
    policy = template.find_resources("AWS::IAM::Policy")
    assert "mlops/dev/slack-webhook" in str(policy)


def _topic_policy_statements(**props) -> list[dict]:
    stack = new_stack()
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    Notifications(stack, "N", topic_name="mlops-dev-alerts", key=key, **props)
    (policy,) = template_of(stack).find_resources("AWS::SNS::TopicPolicy").values()
    return policy["Properties"]["PolicyDocument"]["Statement"]


def test_cloudwatch_alarms_of_this_account_and_environment_may_publish():
    """CloudWatch alarms publish as the service cloudwatch.amazonaws.com, which no identity policy
    can allow: without an Allow in the topic policy SNS refuses every alarm notification ("no
    resource-based policy allows"). aws:SourceAccount and aws:SourceArn keep other accounts' and
    other environments' alarms out (confused deputy)."""
    statements = _topic_policy_statements(alarm_name_prefix="mlops-dev-")
    (allow,) = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish"
    assert list(allow["Resource"]) == ["Ref"], "this topic only"
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": "111111111111"}
    source = render(allow["Condition"]["ArnLike"]["aws:SourceArn"])
    assert wildcard_match(source, "arn:aws:cloudwatch:eu-west-1:111111111111:alarm:mlops-dev-lambda-x-errors")
    assert not wildcard_match(source, "arn:aws:cloudwatch:eu-west-1:111111111111:alarm:mlops-prod-lambda-x-errors")
    assert not wildcard_match(source, "arn:aws:cloudwatch:eu-west-1:222222222222:alarm:mlops-dev-lambda-x-errors")
    # SSL-only stays: the Allow does not replace the Deny.
    ssl_only = {"Bool": {"aws:SecureTransport": "false"}}
    assert any(s["Effect"] == "Deny" and s["Condition"] == ssl_only for s in statements)
