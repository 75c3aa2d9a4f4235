"""A model pipeline's view of an environment's platform, found by name: no cross-stack exports.

The platform stack creates its shared resources under the names in
:class:`mlops_core.platform_names.PlatformNames` and publishes the one value that cannot be
derived (the KMS key's ARN) in an SSM parameter; everything here is imported from those names, so
a model pipeline can live in another stack or another team's CDK app.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from mlops_core.platform_names import PlatformNames


def key_arn_parameter_name(names: PlatformNames) -> str:
    return f"/mlops/{names.environment}/platform/kms-key-arn"


class PlatformRef(Construct):
    """Imported handles on one environment's platform; use :meth:`of` to share one per stack.

    ``slack_webhook_secret_name``: the Slack webhook secret the platform stack refers to; leave it
    unset when the environment uses the default name (``mlops/<environment>/slack-webhook``), set it
    when ``slack_webhook_secret_name`` is set for the environment in config/environments.yaml.
    ``max_trial_bake_seconds``: the environment's cap on a shadow or A/B trial's bake (its
    ``max_trial_bake_seconds`` setting), applied to every model's published configuration.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        names: PlatformNames,
        log_forwarding: bool = False,
        slack_webhook_secret_name: str | None = None,
        max_trial_bake_seconds: int | None = None,
    ) -> None:
        super().__init__(scope, id)
        self.names = names
        self.log_forwarding = log_forwarding
        self.max_trial_bake_seconds = max_trial_bake_seconds
        # The platform's default name when unset, as the platform stack does (EnvironmentSettings
        # .slack_secret): a model must never silently lose its Slack notifications.
        self.slack_webhook_secret_name = slack_webhook_secret_name or names.slack_webhook_secret
        self.data_bucket = s3.Bucket.from_bucket_name(self, "DataBucket", names.data_bucket)
        self.artifact_bucket = s3.Bucket.from_bucket_name(self, "ArtifactBucket", names.artifact_bucket)
        self.airflow_bucket = s3.Bucket.from_bucket_name(self, "AirflowBucket", names.airflow_bucket)
        self.alerts_topic = sns.Topic.from_topic_arn(self, "AlertsTopic", names.alerts_topic_arn)
        # Resolved by CloudFormation at deploy time from the platform's SSM parameter.
        self.key = kms.Key.from_key_arn(
            self, "Key", ssm.StringParameter.value_for_string_parameter(self, key_arn_parameter_name(names))
        )

    def drift_topic(self, project: str) -> sns.ITopic:
        """The project's drift topic (created by the platform stack with the project's trigger alias)."""
        id = f"DriftTopic-{project}"
        existing = self.node.try_find_child(id)
        if existing is not None:
            return existing  # type: ignore[return-value]
        return sns.Topic.from_topic_arn(self, id, self.names.drift_topic_arn(project))

    @classmethod
    def of(
        cls,
        scope: Construct,
        *,
        names: PlatformNames,
        log_forwarding: bool = False,
        slack_webhook_secret_name: str | None = None,
        max_trial_bake_seconds: int | None = None,
    ) -> PlatformRef:
        """The stack's shared reference to ``names.environment``'s platform (created on first use)."""
        stack = Stack.of(scope)
        id = f"Platform-{names.environment}"
        existing = stack.node.try_find_child(id)
        if existing is not None:
            return existing  # type: ignore[return-value]
        return cls(
            stack,
            id,
            names=names,
            log_forwarding=log_forwarding,
            slack_webhook_secret_name=slack_webhook_secret_name,
            max_trial_bake_seconds=max_trial_bake_seconds,
        )
