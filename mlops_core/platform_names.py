"""Physical names of one environment's shared platform resources.

The platform stack creates resources with these names and everything else (model pipelines in
other stacks or other CDK apps, the DAGs, the CI tool) finds them by the same names, so no
CloudFormation cross-stack export couples the stacks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ENVIRONMENT_PATTERN = re.compile(r"^[a-z][a-z0-9]{1,9}$")


@dataclass(frozen=True)
class PlatformNames:
    environment: str
    account: str
    region: str

    def __post_init__(self) -> None:
        if not ENVIRONMENT_PATTERN.fullmatch(self.environment):
            raise ValueError(
                f"environment={self.environment!r} is invalid: 2-10 lowercase letters/digits, starting with a letter"
            )

    def _bucket(self, purpose: str) -> str:
        # Account and region make the globally unique bucket name predictable.
        return f"mlops-{self.environment}-{purpose}-{self.account}-{self.region}"

    @property
    def data_bucket(self) -> str:
        return self._bucket("data")

    @property
    def artifact_bucket(self) -> str:
        return self._bucket("artifacts")

    @property
    def airflow_bucket(self) -> str:
        # The "airflow-" prefix matches MWAA's execution-role examples and console conventions.
        return f"airflow-mlops-{self.environment}-{self.account}-{self.region}"

    @property
    def access_logs_bucket(self) -> str:
        return self._bucket("access-logs")

    @property
    def kms_alias(self) -> str:
        return f"alias/mlops-{self.environment}"

    @property
    def alerts_topic(self) -> str:
        return f"mlops-{self.environment}-alerts"

    def drift_topic(self, project: str) -> str:
        """The topic a project's drift alarms notify; its one subscriber is the project's alias of
        the trigger Lambda (mlops_constructs.dag_trigger)."""
        return f"mlops-{self.environment}-drift-{project}"

    def drift_topic_arn(self, project: str) -> str:
        return f"arn:{self.partition}:sns:{self.region}:{self.account}:{self.drift_topic(project)}"

    @property
    def partition(self) -> str:
        """The ARN partition of the region: China and GovCloud regions have their own."""
        for prefix, partition in (("cn-", "aws-cn"), ("us-gov-", "aws-us-gov")):
            if self.region.startswith(prefix):
                return partition
        return "aws"

    @property
    def alerts_topic_arn(self) -> str:
        return f"arn:{self.partition}:sns:{self.region}:{self.account}:{self.alerts_topic}"

    @property
    def mwaa_environment(self) -> str:
        return f"mlops-{self.environment}"

    @property
    def trigger_function(self) -> str:
        return f"mlops-{self.environment}-dag-trigger"

    @property
    def slack_webhook_secret(self) -> str:
        return f"mlops/{self.environment}/slack-webhook"

    @property
    def log_delivery_stream(self) -> str:
        return f"mlops-{self.environment}-logs"

    @property
    def logs_to_firehose_role(self) -> str:
        return f"mlops-{self.environment}-logs-to-firehose"

    def sagemaker_role(self, stem: str) -> str:
        # IAM role names are limited to 64 characters; a model stem is at most 29.
        return f"mlops-{self.environment}-{stem}-sm"
