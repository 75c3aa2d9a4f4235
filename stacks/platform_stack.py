"""The shared platform of one environment: key, buckets, notifications, network, MWAA, trigger,
CI access, dashboards and log forwarding."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from mlops_constructs.ci_access import GitLabCiAccess
from mlops_constructs.dag_trigger import DagTrigger
from mlops_constructs.encryption import PlatformKey
from mlops_constructs.log_forwarder import LogForwarder
from mlops_constructs.monitoring import PlatformDashboard, alarm_name_prefix
from mlops_constructs.mwaa import MwaaEnvironment
from mlops_constructs.network import MwaaNetwork
from mlops_constructs.notifications import Notifications
from mlops_constructs.orchestration_policy import PipelineOrchestrationPolicy
from mlops_constructs.platform_ref import key_arn_parameter_name
from mlops_constructs.storage import AccessLogsBucket, SecureBucket
from stacks.settings import EnvironmentSettings


class PlatformStack(Stack):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        settings: EnvironmentSettings,
        projects: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        # Set before super().__init__: the availability_zones override below may be read early.
        self.settings = settings
        super().__init__(scope, id, termination_protection=settings.termination_protection, **kwargs)
        names = settings.names

        self.key = PlatformKey(self, "Key", names=names).key
        ssm.StringParameter(
            self,
            "KeyArnParameter",
            parameter_name=key_arn_parameter_name(names),
            string_value=self.key.key_arn,
            description="ARN of the platform KMS key, read by model-pipeline stacks at deploy time",
        )
        access_logs = AccessLogsBucket(self, "AccessLogs", bucket_name=names.access_logs_bucket)
        self.data_bucket = SecureBucket(
            self,
            "Data",
            bucket_name=names.data_bucket,
            encryption_key=self.key,
            access_logs_bucket=access_logs,
        )
        self.artifact_bucket = SecureBucket(
            self,
            "Artifacts",
            bucket_name=names.artifact_bucket,
            encryption_key=self.key,
            access_logs_bucket=access_logs,
        )
        self.notifications = Notifications(
            self,
            "Notifications",
            topic_name=names.alerts_topic,
            key=self.key,
            emails=settings.alert_emails,
            slack_webhook_secret_name=settings.slack_secret,
            alarm_name_prefix=alarm_name_prefix(names.environment),
        )

        network = MwaaNetwork(
            self,
            "Network",
            cidr=settings.network.vpc_cidr,
            availability_zones=settings.availability_zones,
            nat_gateways=settings.network.nat_gateways,
            flow_log_key=self.key,
        )
        self.mwaa = MwaaEnvironment(
            self,
            "Airflow",
            environment_name=names.mwaa_environment,
            bucket_name=names.airflow_bucket,
            vpc=network.vpc,
            subnets=network.private_subnets,
            key=self.key,
            access_logs_bucket=access_logs,
            airflow_version=settings.mwaa.airflow_version,
            environment_class=settings.mwaa.environment_class,
            min_workers=settings.mwaa.min_workers,
            max_workers=settings.mwaa.max_workers,
            webserver_access_mode=settings.mwaa.webserver_access_mode,
        )
        PipelineOrchestrationPolicy(
            self,
            "PipelinePermissions",
            role=self.mwaa.role,
            names=names,
            data_bucket=self.data_bucket,
            artifact_bucket=self.artifact_bucket,
            alerts_topic=self.notifications.topic,
            slack_webhook_secret_name=settings.slack_secret,
        )

        self.trigger = DagTrigger(
            self,
            "DagTrigger",
            environment_name=names.environment,
            mwaa_environment_name=names.mwaa_environment,
            reserved_concurrent_executions=settings.trigger_reserved_concurrency,
            log_encryption_key=self.key,
            drift_topic_key=self.key,
        )
        self._ci_access(settings, projects)

        self.dashboard = PlatformDashboard(
            self,
            "Dashboard",
            environment=names.environment,
            mwaa_environment_name=names.mwaa_environment,
            alarm_topic=self.notifications.topic,
            functions=[self.trigger.function],
        )

        forwarding = settings.log_forwarding
        if forwarding.enabled:
            self.log_forwarder = LogForwarder(
                self,
                "LogForwarder",
                names=names,
                destination_url=str(forwarding.endpoint_url),
                destination_name=forwarding.destination_name,
                access_key_secret_name=forwarding.access_key_secret_name,
                key=self.key,
                access_logs_bucket=access_logs,
            )
            self.log_forwarder.forward(self.trigger.log_group, id="ForwardTriggerLogs")
            for log_group_name in self.mwaa.log_groups:
                subscription = LogForwarder.subscribe(
                    self, f"Forward-{log_group_name}", names=names, log_group_name=log_group_name
                )
                subscription.node.add_dependency(self.mwaa)
                subscription.node.add_dependency(self.log_forwarder)

    def _ci_access(self, settings: EnvironmentSettings, projects: Sequence[str]) -> None:
        """GitLab OIDC roles: deploy/diff for this repository, one per model project for the
        MLOps pipeline (push its own images, call its own alias of the trigger)."""
        ci = settings.ci
        self.ci_access = GitLabCiAccess(
            self,
            "CiAccess",
            environment_name=settings.name,
            gitlab_url=str(ci.gitlab_url).rstrip("/"),
            existing_provider_arn=ci.existing_oidc_provider_arn,
        )
        self.ci_access.add_deploy_role("CiDeployRole", gitlab_project_paths=[ci.infrastructure_project_path])
        self.ci_access.add_diff_role("CiDiffRole", gitlab_project_paths=[ci.infrastructure_project_path])
        for project in projects:
            self.ci_access.add_model_project_role(
                f"CiRole-{project}",
                project=project,
                gitlab_project_paths=[ci.mlops_project_path],
                trigger_alias=self.trigger.add_project(project),
            )

    @property
    def availability_zones(self) -> list[str]:
        """The configured zones, so synth needs no AWS look-up (and no credentials)."""
        return self.settings.availability_zones
