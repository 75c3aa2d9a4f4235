from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Match
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
