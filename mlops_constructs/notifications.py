"""Where the pipeline tells people what happened: an SNS topic (e-mail) and a Slack webhook."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct


class Notifications(Construct):
    """Encrypted, SSL-only alerts topic with e-mail subscriptions, and the Slack webhook secret.

    CloudWatch alarms publish as the service ``cloudwatch.amazonaws.com``, which an identity policy
    cannot grant: the topic policy allows it, for alarms of this account and region whose names
    start with ``alarm_name_prefix`` (aws:SourceAccount / aws:SourceArn, against the confused
    deputy). Without that Allow, SNS refuses every alarm notification ("... alarm:<name> is not
    authorized to perform: SNS:Publish", https://repost.aws/knowledge-center/cloudwatch-receive-sns-for-alarm-trigger).

    The webhook URL is a credential, so it lives in Secrets Manager and is created by hand
    (``aws secretsmanager create-secret``); the platform only references it by name.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        topic_name: str,
        key: kms.IKey,
        emails: Sequence[str] = (),
        slack_webhook_secret_name: str | None = None,
        alarm_name_prefix: str = "",
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        self.topic = sns.Topic(self, "Topic", topic_name=topic_name, master_key=key, enforce_ssl=True)
        self.alarm_source_arn = stack.format_arn(
            service="cloudwatch",
            resource="alarm",
            resource_name=f"{alarm_name_prefix}*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": self.alarm_source_arn},
                },
            )
        )
        for email in emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
        self.slack_webhook_secret = (
            secretsmanager.Secret.from_secret_name_v2(self, "SlackWebhook", slack_webhook_secret_name)
            if slack_webhook_secret_name
            else None
        )

    def grant_publish(self, grantee: iam.IGrantable) -> iam.Grant:
        return self.topic.grant_publish(grantee)

    def grant_read_slack_webhook(self, grantee: iam.IGrantable) -> iam.Grant | None:
        return self.slack_webhook_secret.grant_read(grantee) if self.slack_webhook_secret else None
