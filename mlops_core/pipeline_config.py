"""The pipeline configuration of one model: what ``ModelPipeline`` publishes and the DAGs read.

``ModelPipeline`` validates it at synth time and deploys it as JSON into the DAG bundle
(``dags/pipelines/<project>/<model>/pipeline.json``), so DAG tasks read it from local disk: no AWS call at
parse time, and a configuration change rolls out with ``cdk deploy``.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from mlops_core import names

SCHEMA_VERSION = 1

# Metric name -> True when a higher value is better. The quality gate and the model template's
# evaluation share these names.
CLASSIFICATION_METRICS = {
    "f1": True,
    "precision": True,
    "recall": True,
    "accuracy": True,
    "auc": True,
    "log_loss": False,
}
REGRESSION_METRICS = {"mse": False, "rmse": False, "mae": False, "r2": True}
METRIC_DIRECTIONS = {**CLASSIFICATION_METRICS, **REGRESSION_METRICS}
# The values each metric can take (None: unbounded). A threshold outside them can never pass.
METRIC_RANGES: dict[str, tuple[float | None, float | None]] = {
    **{metric: (0.0, 1.0) for metric in CLASSIFICATION_METRICS},
    "log_loss": (0.0, None),
    "mse": (0.0, None),
    "rmse": (0.0, None),
    "mae": (0.0, None),
    "r2": (None, 1.0),
}
MetricName = Literal["f1", "precision", "recall", "accuracy", "auc", "log_loss", "mse", "rmse", "mae", "r2"]

INSTANCE_TYPE_PATTERN = r"^ml\.[a-z0-9]+\.[a-z0-9]+$"
ProblemType = Literal["classification", "regression"]
# CreateTrainingJob's HyperParameters: at most 100 entries, keys up to 256 and values up to 2,500
# characters (SageMaker API reference).
MAX_HYPERPARAMETERS, MAX_HYPERPARAMETER_KEY, MAX_HYPERPARAMETER_VALUE = 100, 256, 2500


def invalid(loc: tuple[str | int, ...], message: str, value: Any) -> ValidationError:
    """A validation error located at ``loc`` (a model validator's own errors otherwise point at the
    model as a whole), so the message names the field: ``gate.threshold``, not ``(root)``."""
    return ValidationError.from_exception_data(
        title="PipelineConfig",
        line_errors=[InitErrorDetails(type=PydanticCustomError("invalid_setting", message), loc=loc, input=value)],
    )


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TrainingSettings(_Strict):
    instance_type: str = Field("ml.m5.large", pattern=INSTANCE_TYPE_PATTERN)
    instance_count: int = Field(1, ge=1)
    volume_size_gb: int = Field(30, ge=1, le=16384)
    max_runtime_seconds: int = Field(3600, ge=60, le=names.TRAINING_MAX_RUNTIME_LIMIT_SECONDS)
    hyperparameters: dict[str, str | int | float | bool] = Field(default_factory=dict)

    @field_validator("hyperparameters")
    @classmethod
    def _within_sagemaker_limits(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > MAX_HYPERPARAMETERS:
            raise ValueError(
                f"{len(value)} hyperparameters; a SageMaker training job takes at most {MAX_HYPERPARAMETERS}"
            )
        for key, item in value.items():
            if not key or len(key) > MAX_HYPERPARAMETER_KEY:
                raise ValueError(f"hyperparameter name {key!r} must have 1 to {MAX_HYPERPARAMETER_KEY} characters")
            if len(str(item)) > MAX_HYPERPARAMETER_VALUE:
                raise ValueError(
                    f"hyperparameter {key!r} has {len(str(item))} characters; SageMaker takes at most "
                    f"{MAX_HYPERPARAMETER_VALUE}: pass large settings as a file in the training data instead"
                )
            if isinstance(item, float) and not math.isfinite(item):
                raise ValueError(f"hyperparameter {key!r}={item} is not a finite number")
        return value

    @field_validator("instance_count")
    @classmethod
    def _one_instance(cls, value: int) -> int:
        # The model template trains on one host (it refuses a resourceconfig.json with several);
        # more instances would each train the same model and be paid for nothing.
        if value > 1:
            raise ValueError(
                f"instance_count={value}: the model template trains on one instance, so every extra "
                "instance would train the same model; use 1 (a larger instance_type gives more CPU and memory)"
            )
        return value


class EvaluationSettings(_Strict):
    instance_type: str = Field("ml.m5.large", pattern=INSTANCE_TYPE_PATTERN)
    max_runtime_seconds: int = Field(1800, ge=60, le=names.EVALUATION_MAX_RUNTIME_LIMIT_SECONDS)


class QualityGate(_Strict):
    """A candidate is deployable only if ``metric`` passes ``threshold`` and is not worse than the
    model currently serving by more than ``max_regression``.

    For a metric where higher is better (f1, precision, recall, accuracy, r2) the threshold is the
    minimum a candidate must reach; for an error (mse, mae) it is the maximum it may have.
    """

    metric: MetricName = "f1"
    threshold: float = Field(allow_inf_nan=False)
    max_regression: float = Field(0.0, ge=0, allow_inf_nan=False)

    @property
    def greater_is_better(self) -> bool:
        return METRIC_DIRECTIONS[self.metric]

    @model_validator(mode="after")
    def _threshold_can_pass(self) -> QualityGate:
        low, high = METRIC_RANGES[self.metric]
        if (low is not None and self.threshold < low) or (high is not None and self.threshold > high):
            what = (
                f"{self.metric} {_range_text(low, high)} and a candidate must reach the threshold"
                if self.greater_is_better
                else f"{self.metric} is an error ({_range_text(low, high, short=True).removeprefix('of ')}) and the "
                f"threshold is the largest {self.metric} a candidate may have"
            )
            raise invalid(
                ("threshold",),
                f"{what}, so {self.threshold:g} can never pass: use a threshold "
                f"{_range_text(low, high, short=True)}{_example(self.metric)}",
                self.threshold,
            )
        if low is not None and high is not None and self.max_regression > high - low:
            raise invalid(
                ("max_regression",),
                f"{self.metric} {_range_text(low, high)}, so a regression of {self.max_regression:g} allows any "
                f"candidate: use at most {high - low:g} (e.g. 0.01)",
                self.max_regression,
            )
        return self


def _range_text(low: float | None, high: float | None, *, short: bool = False) -> str:
    if low is not None and high is not None:
        return f"between {low:g} and {high:g}" if short else f"lies between {low:g} and {high:g}"
    if low is not None:
        return f"of {low:g} or more" if short else f"is never below {low:g}"
    return f"of {high:g} or less" if short else f"is never above {high:g}"


_EXAMPLE_THRESHOLDS = {"mse": 0.25, "mae": 0.4, "r2": 0.7}


def _example(metric: str) -> str:
    example = _EXAMPLE_THRESHOLDS.get(metric, 0.85)
    return f", e.g. {example:g}"


class Autoscaling(_Strict):
    min_capacity: int = Field(1, ge=1)
    max_capacity: int = Field(2, ge=1)
    target_invocations_per_instance: int = Field(100, ge=1)
    scale_in_cooldown_seconds: int = Field(300, ge=0)
    scale_out_cooldown_seconds: int = Field(60, ge=0)

    @model_validator(mode="after")
    def _min_not_above_max(self) -> Autoscaling:
        if self.min_capacity > self.max_capacity:
            raise invalid(
                ("min_capacity",),
                f"min_capacity={self.min_capacity} is greater than max_capacity={self.max_capacity}: "
                "lower min_capacity or raise max_capacity",
                self.min_capacity,
            )
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


class DataCapture(_Strict):
    """What the endpoint records of its traffic (SageMaker data capture: every sampled request and
    response, under the model's prefix of the artifacts bucket, encrypted with the platform key).
    Drift checks read these records, so capture is on unless a model turns it off."""

    enabled: bool = True
    # DataCaptureConfig.InitialSamplingPercentage: 0 to 100 (SageMaker API reference).
    sampling_percentage: int = Field(100, ge=0, le=100)

    @model_validator(mode="after")
    def _samples_something(self) -> DataCapture:
        if self.enabled and self.sampling_percentage == 0:
            raise invalid(
                ("sampling_percentage",),
                "sampling_percentage=0 captures nothing: use 1 to 100, or enabled=False to turn capture off",
                self.sampling_percentage,
            )
        return self


class DriftMonitoring(_Strict):
    """The endpoint's drift check and the retraining it starts.

    Every ``check_interval_hours`` the Drift Check DAG compares the traffic the endpoint captured
    since the last check with the serving model's training-data baseline, as Model Monitor's data
    quality check does: a feature drifts when the distance between its baseline and current
    distributions exceeds ``comparison_threshold`` (Model Monitor's
    ``distribution_constraints.comparison_threshold``). A check with fewer than ``min_records``
    captured records gives no verdict. When a check finds drifted features the model's drift alarm
    fires and starts Training & Evaluation on the model's current data, at most once per
    ``cool_down_hours``."""

    enabled: bool = True
    check_interval_hours: int = Field(1, ge=1, le=24)
    comparison_threshold: float = Field(0.1, gt=0, le=1, allow_inf_nan=False)
    min_records: int = Field(100, ge=1)
    cool_down_hours: int = Field(24, ge=1, le=30 * 24)


class ShadowCriteria(_Strict):
    """When a shadow trial promotes its candidate: over the bake period, the candidate (the shadow
    variant, fed ``sampling_percentage`` % of production's requests) answered at least
    ``min_invocations`` copies, its error rate (4xx and 5xx answers) is at most
    ``max_error_rate_increase`` above production's, and its p99 model latency at most
    ``max_p99_latency_increase`` (a fraction: 0.2 = 20 %) above production's.

    With ``min_agreement`` (a fraction: 0.95 = 95 %), the candidate's predictions must also agree with
    production's on at least that share of the records both answered, read from the endpoint's data
    capture (request pairs matched by the request; see mlops_dags.agreement). A classifier agrees
    when it predicts the same label; a regressor when the two values differ by at most
    ``agreement_tolerance`` of the larger one (0.05: within 5 %)."""

    sampling_percentage: int = Field(100, ge=1, le=100)
    min_invocations: int = Field(100, ge=1)
    max_error_rate_increase: float = Field(0.0, ge=0, le=1, allow_inf_nan=False)
    max_p99_latency_increase: float = Field(0.2, ge=0, allow_inf_nan=False)
    min_agreement: float | None = Field(None, ge=0, le=1, allow_inf_nan=False)
    agreement_tolerance: float = Field(0.01, ge=0, le=1, allow_inf_nan=False)


class ABCriteria(_Strict):
    """How an A/B test runs and decides: the candidate serves ``traffic_shares[i]`` of the requests
    (production the rest) for ``bake_seconds`` at each step in turn (weights shifted with
    UpdateEndpointWeightsAndCapacities); then, if both variants answered at least
    ``min_invocations`` requests, the one with the lower ``decision_metric`` wins (the candidate on a
    tie: it passed the quality gate and is the newer model), else the test is inconclusive and
    production keeps serving.

    With ``abort_error_rate``, the test is checked while it bakes: once the candidate answered
    ``abort_min_invocations`` requests with at least that share of errors (4xx and 5xx), it ends at
    once, lost, instead of serving real callers failing answers until the last bake ends."""

    traffic_shares: tuple[float, ...] = (0.1, 0.5)
    min_invocations: int = Field(100, ge=1)
    decision_metric: Literal["error_rate", "latency_p99"] = "error_rate"
    abort_error_rate: float | None = Field(None, gt=0, le=1, allow_inf_nan=False)
    abort_min_invocations: int = Field(20, ge=1)

    @field_validator("traffic_shares")
    @classmethod
    def _increasing_shares_below_one(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value or len(value) > 10:
            raise ValueError("give 1 to 10 traffic shares, e.g. (0.1, 0.5)")
        if any(not 0 < share < 1 for share in value) or list(value) != sorted(set(value)):
            raise ValueError(
                f"{list(value)}: each share is the candidate's part of the traffic, strictly between 0 and 1, "
                "and each step gives it more than the last, e.g. (0.1, 0.5)"
            )
        return value


DeploymentStrategy = Literal["blue_green", "shadow", "ab"]


class DeploymentSettings(_Strict):
    """How the Deployment DAG puts a new version on a serving endpoint: ``blue_green`` (update in
    place, rolled back on the rollback alarms), ``shadow`` (first a trial beside production as a
    shadow variant for ``bake_seconds``, judged by ``shadow``) or ``ab`` (first an A/B test as a
    weighted production variant, ``bake_seconds`` per traffic step, decided by ``ab``); then
    blue/green if the candidate passes or wins, else it is rejected. A first deployment has nothing
    to compare with: blue/green."""

    strategy: DeploymentStrategy = "blue_green"
    bake_seconds: int = Field(3600, ge=1, le=names.SHADOW_BAKE_LIMIT_SECONDS)
    shadow: ShadowCriteria = Field(default_factory=ShadowCriteria)
    ab: ABCriteria = Field(default_factory=ABCriteria)

    @model_validator(mode="after")
    def _settings_of_the_chosen_strategy(self) -> DeploymentSettings:
        # A published configuration names every field: only a value other than the default is unused.
        defaults = DeploymentSettings.model_fields
        uses = {"bake_seconds": ("shadow", "ab"), "shadow": ("shadow",), "ab": ("ab",)}
        unused = [
            name
            for name, strategies in uses.items()
            if self.strategy not in strategies
            and getattr(self, name) != defaults[name].get_default(call_default_factory=True)
        ]
        if unused:
            raise invalid(
                (unused[0],),
                f"{unused[0]} applies to strategy {' or '.join(map(repr, uses[unused[0]]))} only, but strategy "
                f"is {self.strategy!r}: set the strategy or remove {unused[0]}",
                getattr(self, unused[0]),
            )
        return self


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
    data_capture: DataCapture = Field(default_factory=DataCapture)
    drift: DriftMonitoring = Field(default_factory=DriftMonitoring)
    deployment: DeploymentSettings = Field(default_factory=DeploymentSettings)
    notifications: Notifications

    @field_validator("project", "model")
    @classmethod
    def _valid_name(cls, value: str, info) -> str:
        return names.validate_name(info.field_name, value)

    @model_validator(mode="after")
    def _gate_metric_fits_problem(self) -> PipelineConfig:
        allowed = CLASSIFICATION_METRICS if self.problem_type == "classification" else REGRESSION_METRICS
        if self.gate.metric not in allowed:
            raise invalid(
                ("gate", "metric"),
                f"{self.gate.metric!r} is not a {self.problem_type} metric (problem_type={self.problem_type!r}): "
                f"gate on one of {', '.join(allowed)}",
                self.gate.metric,
            )
        return self

    @model_validator(mode="after")
    def _drift_reads_captured_traffic(self) -> PipelineConfig:
        if self.drift.enabled and not self.data_capture.enabled:
            raise invalid(
                ("drift", "enabled"),
                "the drift check reads the endpoint's captured traffic, but data_capture is disabled: "
                "enable data_capture or set drift.enabled=False",
                self.drift.enabled,
            )
        return self

    @model_validator(mode="after")
    def _agreement_reads_captured_pairs(self) -> PipelineConfig:
        shadow = self.deployment.shadow
        if shadow.min_agreement is not None and not self.data_capture.enabled:
            raise invalid(
                ("deployment", "shadow", "min_agreement"),
                "prediction agreement is judged from the endpoint's captured answers, but data_capture is "
                "disabled: enable data_capture or remove min_agreement",
                shadow.min_agreement,
            )
        default_tolerance = ShadowCriteria.model_fields["agreement_tolerance"].default
        if self.problem_type == "classification" and shadow.agreement_tolerance != default_tolerance:
            raise invalid(
                ("deployment", "shadow", "agreement_tolerance"),
                "agreement_tolerance applies to a regressor's values; a classifier agrees when it predicts the "
                "same label: remove agreement_tolerance",
                shadow.agreement_tolerance,
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

    @property
    def data_capture_uri(self) -> str:
        return names.data_capture_uri(self.artifact_bucket, self.project, self.model)

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
