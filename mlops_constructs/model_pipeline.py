"""Everything one model needs on the platform, from one construct."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct
from pydantic import ValidationError

from mlops_constructs._nag import BUCKET_GRANT_ACTIONS, acknowledge_cdk_handlers, acknowledge_wildcards
from mlops_constructs.encryption import key_grant_statement, key_usage_statement
from mlops_constructs.log_forwarder import LogForwarder
from mlops_constructs.model_repository import ModelRepository
from mlops_constructs.monitoring import EndpointMonitoring
from mlops_constructs.pipeline_config_publisher import PipelineConfigPublisher
from mlops_constructs.platform_ref import PlatformRef
from mlops_constructs.sagemaker_access import sagemaker_log_statements, sagemaker_log_wildcards, sagemaker_principal
from mlops_constructs.validation import ConfigurationError, as_dict, call_site, describe
from mlops_core import names
from mlops_core.pipeline_config import (
    DataCapture,
    DeploymentSettings,
    DriftMonitoring,
    EndpointSettings,
    EvaluationSettings,
    PipelineConfig,
    ProblemType,
    QualityGate,
    Retraining,
    TrainingSettings,
)

_REGISTRY_ID = "MlopsModelRegistry"
# Set by ModelPipeline itself from its monitoring.
_DERIVED_ENDPOINT_FIELDS = ("rollback_alarm_names", "dashboard_name")


def _registry(scope: Construct) -> dict[tuple[str, str, str], str]:
    """(environment, project, model) -> construct path of every ModelPipeline in this app, so a
    duplicate fails synth with both places named instead of failing at deploy time."""
    root = scope.node.root
    holder = root.node.try_find_child(_REGISTRY_ID)
    if holder is None:
        holder = Construct(root, _REGISTRY_ID)
        holder.models = {}  # type: ignore[attr-defined]
    return holder.models  # type: ignore[attr-defined,no-any-return]


class ModelPipeline(Construct):
    """A model's ECR repository, SageMaker role, endpoint logs and monitoring, and its pipeline
    configuration published into the DAG bundle.

    The endpoint itself is created by the Deployment DAG (its name comes from the model's name),
    which applies ``endpoint.autoscaling`` from the published configuration.

    Settings are validated at synth time: a bad value stops ``cdk synth`` naming the file and line
    of the ``ModelPipeline(...)`` call, the environment, the field and the value.

    ``training``, ``evaluation``, ``gate``, ``endpoint``, ``retraining``, ``data_capture``,
    ``drift`` and ``deployment`` take the typed settings of :mod:`mlops_core.pipeline_config`
    (``QualityGate(metric="f1", threshold=0.85)``, exported by ``mlops_constructs``) or the same as
    dicts.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        platform: PlatformRef,
        project: str,
        model: str,
        gate: QualityGate | Mapping[str, Any],
        problem_type: ProblemType = "classification",
        training: TrainingSettings | Mapping[str, Any] | None = None,
        evaluation: EvaluationSettings | Mapping[str, Any] | None = None,
        endpoint: EndpointSettings | Mapping[str, Any] | None = None,
        retraining: Retraining | Mapping[str, Any] | None = None,
        data_capture: DataCapture | Mapping[str, Any] | None = None,
        drift: DriftMonitoring | Mapping[str, Any] | None = None,
        deployment: DeploymentSettings | Mapping[str, Any] | None = None,
        monitored_metrics: Sequence[str] | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        env = platform.names
        site = call_site()
        where = (
            f"{site + ': ' if site else ''}ModelPipeline {id!r} (project {project!r}, model {model!r}), "
            f"environment {env.environment!r}"
        )
        try:
            names.validate_name("project", project)
            names.validate_name("model", model)
        except ValueError as exc:
            raise describe_name_error(exc, where) from exc

        registry = _registry(self)
        key = (env.environment, project, model)
        place = f"{self.node.path}{f' ({site})' if site else ''}"
        if key in registry:
            raise ConfigurationError(
                f"duplicate model: project={project!r} model={model!r} in environment {env.environment!r} "
                f"is defined twice, at {registry[key]} and at {place}: give each ModelPipeline its own model name"
            )
        registry[key] = place
        gate, endpoint = as_dict(gate), as_dict(endpoint)
        derived = [field for field in _DERIVED_ENDPOINT_FIELDS if field in endpoint]
        if derived:
            lines = [f"  endpoint.{field}: set by ModelPipeline from its monitoring: remove it" for field in derived]
            raise ConfigurationError(f"{where}:\n" + "\n".join(lines))

        stem = names.model_stem(project, model)
        self.repository = ModelRepository(self, "Repository", project=project, model=model)
        self.role = self._sagemaker_role(platform, project, model, stem)
        self.repository.grant_pull(self.role)

        self.endpoint_log_group = logs.LogGroup(
            self,
            "EndpointLogs",
            log_group_name=f"/aws/sagemaker/Endpoints/{names.endpoint_name(project, model)}",
            retention=log_retention,
            encryption_key=platform.key,
            # Kept on delete; a failed first create removes it, so a retry does not hit its name.
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )
        if platform.log_forwarding:
            LogForwarder.subscribe(
                self,
                "EndpointLogsForwarding",
                names=env,
                log_group_name=self.endpoint_log_group.log_group_name,
            )

        self.monitoring = EndpointMonitoring(
            self,
            "Monitoring",
            environment=env.environment,
            project=project,
            model=model,
            alarm_topic=platform.alerts_topic,
            model_metrics=tuple(monitored_metrics or (gate.get("metric", "f1"),)),
        )
        # Blue/green deployment guardrails read these alarms as the endpoint's role.
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:DescribeAlarms"],
                resources=[
                    stack.format_arn(
                        service="cloudwatch",
                        resource="alarm",
                        resource_name=name,
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                    for name in self.monitoring.rollback_alarm_names
                ],
            )
        )

        raw = {
            "environment": env.environment,
            "project": project,
            "model": model,
            "problem_type": problem_type,
            "image_repository_uri": self.repository.repository.repository_uri,
            "sagemaker_role_arn": self.role.role_arn,
            "data_bucket": env.data_bucket,
            "artifact_bucket": env.artifact_bucket,
            "kms_key_arn": platform.key.key_arn,
            "training": as_dict(training),
            "evaluation": as_dict(evaluation),
            "gate": gate,
            "endpoint": {
                **endpoint,
                "rollback_alarm_names": list(self.monitoring.rollback_alarm_names),
                "dashboard_name": self.monitoring.dashboard_name,
            },
            "retraining": as_dict(retraining),
            "data_capture": as_dict(data_capture),
            "drift": as_dict(drift),
            "deployment": as_dict(deployment),
            "notifications": {
                "sns_topic_arn": env.alerts_topic_arn,
                "slack_webhook_secret_name": platform.slack_webhook_secret_name,
            },
        }
        try:
            self.config = _with_environment_bake_cap(
                PipelineConfig.model_validate(raw), platform.max_trial_bake_seconds
            )
        except ValidationError as exc:
            raise describe(exc, where=where, model=PipelineConfig) from exc
        if self.config.drift.enabled:
            # The project's drift topic reaches the project's own alias of the trigger Lambda only.
            self.monitoring.add_drift_alarm(
                platform.drift_topic(project), check_interval_hours=self.config.drift.check_interval_hours
            )

        # Only the publisher's own role may write this model's pipeline.json, and nothing else of the
        # MWAA bucket (its DAGs, plugins and startup script run as the MWAA execution role).
        self.config_deployment = PipelineConfigPublisher(
            self,
            "PublishConfiguration",
            platform=env,
            key=platform.key,
            project=project,
            model=model,
            document=json.loads(self.config.model_dump_json()),
        )
        acknowledge_cdk_handlers(stack)

    @property
    def endpoint_name(self) -> str:
        return self.config.endpoint_name

    def _sagemaker_role(self, platform: PlatformRef, project: str, model: str, stem: str) -> iam.Role:
        """The role SageMaker jobs and the endpoint run as: this model's data, artifacts and image only."""
        stack = Stack.of(self)
        env = platform.names
        partition, region, account = stack.partition, stack.region, stack.account
        role = iam.Role(
            self,
            "SageMakerRole",
            role_name=env.sagemaker_role(stem),
            assumed_by=sagemaker_principal(partition=partition, region=region, account=account),
            description=f"SageMaker jobs and endpoint of {project}/{model} ({env.environment})",
        )
        prefix = f"{project}/{model}/*"
        platform.data_bucket.grant_read(role, prefix)
        platform.artifact_bucket.grant_read_write(role, prefix)
        role.add_to_policy(key_usage_statement(env, partition=partition))
        # Training/processing volumes (VolumeKmsKeyId) and endpoint volumes are encrypted through a
        # grant SageMaker creates as this role.
        role.add_to_policy(key_grant_statement(env, partition=partition))
        role.add_to_policy(iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]))
        for statement in sagemaker_log_statements(
            partition=partition, region=region, account=account, stem=stem, endpoint=names.endpoint_name(project, model)
        ):
            role.add_to_policy(statement)
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "aws/sagemaker/*"]}},
            )
        )
        acknowledge_wildcards(
            role,
            [
                *BUCKET_GRANT_ACTIONS,
                f"Resource::arn:*:s3:::{env.data_bucket}/{prefix}",
                f"Resource::arn:*:s3:::{env.artifact_bucket}/{prefix}",
                *sagemaker_log_wildcards(stem=stem, endpoint=names.endpoint_name(project, model)),
                "Resource::arn:*:kms:*:key/*",
                "Resource::[*]",
            ],
            "Only this model's S3 prefixes; SageMaker's shared job log groups (their streams are named after "
            "the run, <stem>-v...) and this endpoint's log group; the platform key is matched by its alias "
            "(kms:ResourceAliases condition) because it lives in another stack; ecr:GetAuthorizationToken and "
            "cloudwatch:PutMetricData (namespace-conditioned) take no ARN.",
        )
        return role


def describe_name_error(exc: ValueError, where: str) -> ConfigurationError:
    return ConfigurationError(f"{where}: {exc}")


def _with_environment_bake_cap(config: PipelineConfig, cap: int | None) -> PipelineConfig:
    """The configuration as published in an environment that caps trial bakes (its
    ``max_trial_bake_seconds``): a blue/green model, or a bake within the cap, is unchanged."""
    deployment = config.deployment
    if cap is None or deployment.strategy == "blue_green" or deployment.bake_seconds <= cap:
        return config
    return config.model_copy(update={"deployment": deployment.model_copy(update={"bake_seconds": cap})})
