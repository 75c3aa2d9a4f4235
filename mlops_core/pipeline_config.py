"""The pipeline configuration of one model: what ``ModelPipeline`` publishes and the DAGs read.

``ModelPipeline`` validates it at synth time and deploys it as JSON into the DAG bundle
(``dags/pipelines/<project>/<model>/pipeline.json``), so DAG tasks read it from local disk: no AWS call at
parse time, and a configuration change rolls out with ``cdk deploy``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mlops_core import names

SCHEMA_VERSION = 1

# Metric name -> True when a higher value is better. The quality gate and the model template's
# evaluation share these names.
CLASSIFICATION_METRICS = {"f1": True, "precision": True, "recall": True, "accuracy": True}
REGRESSION_METRICS = {"mse": False, "mae": False, "r2": True}
METRIC_DIRECTIONS = {**CLASSIFICATION_METRICS, **REGRESSION_METRICS}

INSTANCE_TYPE_PATTERN = r"^ml\.[a-z0-9]+\.[a-z0-9]+$"
ProblemType = Literal["classification", "regression"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TrainingSettings(_Strict):
    instance_type: str = Field("ml.m5.large", pattern=INSTANCE_TYPE_PATTERN)
    instance_count: int = Field(1, ge=1, le=20)
    volume_size_gb: int = Field(30, ge=1, le=16384)
    max_runtime_seconds: int = Field(3600, ge=60, le=names.TRAINING_MAX_RUNTIME_LIMIT_SECONDS)
    hyperparameters: dict[str, str | int | float | bool] = Field(default_factory=dict)


class EvaluationSettings(_Strict):
    instance_type: str = Field("ml.m5.large", pattern=INSTANCE_TYPE_PATTERN)
    max_runtime_seconds: int = Field(1800, ge=60, le=names.EVALUATION_MAX_RUNTIME_LIMIT_SECONDS)


class QualityGate(_Strict):
    """A candidate is deployable only if ``metric`` passes ``threshold`` and is not worse than the
    model currently serving by more than ``max_regression``."""

    metric: str = "f1"
    threshold: float
    max_regression: float = Field(0.0, ge=0)

    @property
    def greater_is_better(self) -> bool:
        return METRIC_DIRECTIONS[self.metric]


class Autoscaling(_Strict):
    min_capacity: int = Field(1, ge=1)
    max_capacity: int = Field(2, ge=1)
    target_invocations_per_instance: int = Field(100, ge=1)
    scale_in_cooldown_seconds: int = Field(300, ge=0)
    scale_out_cooldown_seconds: int = Field(60, ge=0)

    @model_validator(mode="after")
    def _min_not_above_max(self) -> Autoscaling:
        if self.min_capacity > self.max_capacity:
            raise ValueError(f"min_capacity={self.min_capacity} is greater than max_capacity={self.max_capacity}")
        return self


class EndpointSettings(_Strict):
    instance_type: str = Field("ml.m5.large", pattern=INSTANCE_TYPE_PATTERN)
    autoscaling: Autoscaling = Field(default_factory=Autoscaling)
    # Blue/green deployment rolls back automatically when one of these alarms fires.
    rollback_alarm_names: tuple[str, ...] = ()
    dashboard_name: str = ""


# The Retraining DAG runs at midnight but runs start later: a model trained at 00:20 is one day
# old only at 00:20 the next day, so "due" allows half a day of slack rather than skip a day.
RETRAINING_SLACK = timedelta(hours=12)


class Retraining(_Strict):
    enabled: bool = True
    # The daily Retraining DAG retrains a serving model once its newest run is this many days old.
    interval_days: int = Field(1, ge=1, le=365)

    def is_due(self, last_trained_at: datetime | None, now: datetime) -> bool:
        """Whether the daily Retraining DAG retrains the model now."""
        if not self.enabled:
            return False
        return last_trained_at is None or now - last_trained_at >= timedelta(days=self.interval_days) - RETRAINING_SLACK


class Notifications(_Strict):
    sns_topic_arn: str
    slack_webhook_secret_name: str | None = None


class PipelineConfig(_Strict):
    schema_version: int = SCHEMA_VERSION
    environment: str
    project: str
    model: str
    problem_type: ProblemType = "classification"
    image_repository_uri: str
    sagemaker_role_arn: str
    data_bucket: str
    artifact_bucket: str
    kms_key_arn: str | None = None
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    evaluation: EvaluationSettings = Field(default_factory=EvaluationSettings)
    gate: QualityGate
    endpoint: EndpointSettings = Field(default_factory=EndpointSettings)
    retraining: Retraining = Field(default_factory=Retraining)
    notifications: Notifications

    @field_validator("project", "model")
    @classmethod
    def _valid_name(cls, value: str, info) -> str:
        return names.validate_name(info.field_name, value)

    @model_validator(mode="after")
    def _gate_metric_fits_problem(self) -> PipelineConfig:
        allowed = CLASSIFICATION_METRICS if self.problem_type == "classification" else REGRESSION_METRICS
        if self.gate.metric not in allowed:
            raise ValueError(
                f"gate.metric={self.gate.metric!r} is not a {self.problem_type} metric; use one of {sorted(allowed)}"
            )
        return self

    # Derived names, so DAGs never rebuild them by hand.
    @property
    def endpoint_name(self) -> str:
        return names.endpoint_name(self.project, self.model)

    @property
    def model_package_group_name(self) -> str:
        return names.model_package_group_name(self.project, self.model)

    @property
    def training_data_uri(self) -> str:
        return names.training_data_uri(self.data_bucket, self.project, self.model)

    def run_output_uri(self, run_name: str) -> str:
        return names.run_output_uri(self.artifact_bucket, self.project, self.model, run_name)


def load_pipeline_config(dags_folder: str | Path, project: str, model: str) -> PipelineConfig:
    """Read a model's configuration from the DAG bundle, with a clear error when it is missing."""
    path = Path(dags_folder) / names.pipeline_config_path(project, model)
    if not path.is_file():
        raise FileNotFoundError(
            f"no pipeline configuration for project={project!r} model={model!r} at {path}: "
            "is the model's ModelPipeline deployed in this environment?"
        )
    return PipelineConfig.model_validate_json(path.read_text())


def list_pipeline_configs(dags_folder: str | Path) -> list[PipelineConfig]:
    """Every model's configuration in the DAG bundle, sorted by project then model."""
    root = Path(dags_folder) / names.PIPELINE_CONFIG_DIR
    configs = [
        PipelineConfig.model_validate_json(p.read_text())
        for p in sorted(root.glob(f"*/*/{names.PIPELINE_CONFIG_FILE}"))
    ]
    return sorted(configs, key=lambda c: (c.project, c.model))


def dumps(config: PipelineConfig) -> str:
    return json.dumps(config.model_dump(mode="json"), indent=2, sort_keys=True)
