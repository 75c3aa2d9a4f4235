"""Names of everything the platform creates, derived from (environment, project, model).

SageMaker names must match ``^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$``; ECR repository names must be
lowercase. Project and model names are therefore restricted to lowercase words joined by single
hyphens, which is valid in both, and ``--`` is reserved as the project/model separator so that
``a-b``/``c`` and ``a``/``b-c`` never collide.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime

import semver

NAME_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
NAME_MAX_LENGTH = 40
SAGEMAKER_NAME_MAX_LENGTH = 63
SAGEMAKER_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
# Leaves room for the run suffix "-v999-999-999-r9999-YYYYmmddHHMMSS" (34 characters).
STEM_MAX_LENGTH = 29
TIMESTAMP_FORMAT = "%Y%m%d%H%M%S"
# Upper limits of a model's configured job runtimes (pipeline configuration): SageMaker's own
# limit for a training job's MaxRuntimeInSeconds, and the platform's for an evaluation. The DAGs'
# run timeouts are derived from them, so no configured job outlives its run.
TRAINING_MAX_RUNTIME_LIMIT_SECONDS = 28 * 24 * 3600
EVALUATION_MAX_RUNTIME_LIMIT_SECONDS = 24 * 3600
# The longest a shadow trial may bake: the Deployment DAG's run timeout allows for it.
SHADOW_BAKE_LIMIT_SECONDS = 24 * 3600

# DAG ids: the trigger Lambda's allow-list and the CI tool derive from these.
DAG_TRAINING = "mlops_training_evaluation"
DAG_DEPLOYMENT = "mlops_deployment"
DAG_RETRAINING = "mlops_retraining"
# Runs each serving model's drift check (the monitoring schedule the Deployment DAG records).
DAG_DRIFT_CHECK = "mlops_drift_check"
TRIGGERABLE_DAGS = (DAG_TRAINING, DAG_DEPLOYMENT)

# Every endpoint has one production variant of this name (the Deployment DAG creates it; the
# dashboards and rollback alarms are keyed on it). Blue/green updates keep the name.
ENDPOINT_VARIANT_NAME = "AllTraffic"

# CloudWatch metrics the DAGs publish and the dashboards/alarms read.
# Evaluation metrics: namespace MODEL_METRICS_NAMESPACE, metric name = metric key ("f1", "mse"...),
# dimensions model_metric_dimensions(...).
MODEL_METRICS_NAMESPACE = "MLOps/Models"
# Pipeline health: metric PIPELINE_FAILURE_METRIC, dimensions pipeline_metric_dimensions(...).
PIPELINE_METRICS_NAMESPACE = "MLOps/Pipelines"
PIPELINE_FAILURE_METRIC = "TaskFailures"


def model_metric_dimensions(environment: str, project: str, model: str) -> dict[str, str]:
    return {"Environment": environment, "Project": project, "Model": model}


def pipeline_metric_dimensions(environment: str, dag_id: str) -> dict[str, str]:
    return {"Environment": environment, "Dag": dag_id}


# Environment variables carrying the model manifest into the serving container. The model
# template reads exactly these names (tests/test_template_contract.py checks that it does).
MANIFEST_ENV = {
    "model_name": "MLOPS_MODEL_NAME",
    "model_version": "MLOPS_MODEL_VERSION",
    "training_data": "MLOPS_TRAINING_DATA",
    "trained_at": "MLOPS_TRAINED_AT",
    "source_commit": "MLOPS_SOURCE_COMMIT",
}

# What the model template's evaluate job writes (model_template/src/mlops_runtime/contract.py keeps
# the same names; tests/test_template_contract.py checks that it does): the platform's evaluation
# (quality gate, notifications), the same metrics in SageMaker's model-quality format (the model
# package's ModelQuality statistics) and the confusion-matrix image.
EVALUATION_FILE = "evaluation.json"
MODEL_QUALITY_FILE = "model_quality.json"
CONFUSION_MATRIX_FILE = "confusion_matrix.png"
# What the template's endpoint accepts and answers (the model package's inference specification).
SUPPORTED_CONTENT_TYPES = ("application/json", "text/csv", "application/jsonlines")
SUPPORTED_RESPONSE_MIME_TYPES = ("application/json", "text/csv", "application/jsonlines")

# Paths inside the MWAA DAG folder (and the S3 prefix "dags/" of the environment's bucket).
PIPELINE_CONFIG_DIR = "pipelines"


class InvalidName(ValueError):
    """A name breaks a platform naming rule; the message names the field and the value."""


def validate_name(field: str, value: str) -> str:
    """Check a project or model name; return it unchanged or raise naming field and value."""
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise InvalidName(
            f"{field}={value!r} is invalid: use lowercase letters and digits, words joined by "
            "single hyphens (valid as an ECR repository path and a SageMaker name)"
        )
    if len(value) > NAME_MAX_LENGTH:
        raise InvalidName(f"{field}={value!r} is longer than {NAME_MAX_LENGTH} characters")
    return value


# GitLab's OIDC `sub` names only the project and the ref a job runs for (AWS evaluates no other
# claim of a self-managed GitLab's token), so a platform project's releases into one environment
# run on their own protected branch of the MLOps GitLab project, and the project's CI role in that
# environment trusts only that branch: a pipeline for project A cannot assume project B's role,
# and a pipeline for dev cannot assume the prod role.
CI_RELEASE_BRANCH_PREFIX = "models/"


def ci_release_branch(environment: str, project: str) -> str:
    """The MLOps project's branch a platform project's release pipelines for one environment run on."""
    if not isinstance(environment, str) or not NAME_PATTERN.fullmatch(environment):
        raise InvalidName(f"environment={environment!r} is not a platform environment name")
    return f"{CI_RELEASE_BRANCH_PREFIX}{environment}/{validate_name('project', project)}"


def ci_role_name(environment: str, project: str) -> str:
    """The IAM role a platform project's CI jobs assume in one environment (GitLabCiAccess)."""
    return f"mlops-{environment}-ci-{validate_name('project', project)}"


def project_of_ci_role(environment: str, role_name: str) -> str | None:
    """The project whose CI role this is, or None for any other role."""
    prefix = f"mlops-{environment}-ci-"
    if not role_name.startswith(prefix):
        return None
    try:
        return validate_name("project", role_name.removeprefix(prefix))
    except InvalidName:
        return None


def ecr_repository_name(project: str, model: str) -> str:
    return f"{validate_name('project', project)}/{validate_name('model', model)}"


def model_stem(project: str, model: str) -> str:
    """Stable prefix of every SageMaker name of one model (endpoint, package group, jobs).

    Long pairs are shortened with a hash of the full pair, so the stem stays unique and stable.
    """
    full = f"{validate_name('project', project)}--{validate_name('model', model)}"
    if len(full) <= STEM_MAX_LENGTH:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:6]
    return f"{full[: STEM_MAX_LENGTH - 7].rstrip('-')}-{digest}"


def endpoint_name(project: str, model: str) -> str:
    return model_stem(project, model)


def model_package_group_name(project: str, model: str) -> str:
    return model_stem(project, model)


def dashboard_name(environment: str, project: str, model: str) -> str:
    # Dashboard names allow [A-Za-z0-9_-]; keep the readable unshortened pair.
    return f"mlops-{environment}-{project}--{model}"


PIPELINE_CONFIG_FILE = "pipeline.json"


def pipeline_config_dir(project: str, model: str) -> str:
    """Folder of a model's pipeline configuration, relative to the DAG folder.

    One folder per model, so each model's deployment can prune its own folder without touching
    any other model's configuration.
    """
    return f"{PIPELINE_CONFIG_DIR}/{validate_name('project', project)}/{validate_name('model', model)}"


def pipeline_config_path(project: str, model: str) -> str:
    """Path of a model's pipeline configuration, relative to the DAG folder."""
    return f"{pipeline_config_dir(project, model)}/{PIPELINE_CONFIG_FILE}"


def training_data_uri(bucket: str, project: str, model: str) -> str:
    return f"s3://{bucket}/{project}/{model}/training/"


def run_output_uri(bucket: str, project: str, model: str, run_name: str) -> str:
    return f"s3://{bucket}/{project}/{model}/runs/{run_name}/"


def data_capture_uri(bucket: str, project: str, model: str) -> str:
    """Where the model's endpoint writes its data capture (DataCaptureConfig.DestinationS3Uri);
    SageMaker adds ``/<endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl`` below it."""
    return f"s3://{bucket}/{validate_name('project', project)}/{validate_name('model', model)}/data-capture"


# SageMaker ML Lineage Tracking: what the DAGs record (mlops_dags.lineage) and `mlops lineage` reads.
# Entity types (ArtifactType, ActionType, ContextType):
LINEAGE_DATASET = "DataSet"
LINEAGE_IMAGE = "Image"
LINEAGE_SOURCE_COMMIT = "SourceCommit"
LINEAGE_MODEL = "Model"
LINEAGE_MODEL_PACKAGE = "ModelPackage"
LINEAGE_TRAINING_JOB = "TrainingJob"
LINEAGE_EVALUATION_JOB = "ProcessingJob"
LINEAGE_ENDPOINT_CONFIG = "EndpointConfig"
LINEAGE_ENDPOINT = "Endpoint"
# Actions and contexts are named (artifacts are identified by their source); every name starts with
# this prefix, which the MWAA role's lineage grant is scoped to.
LINEAGE_NAME_PREFIX = "mlops-"


def lineage_action_name(run_name: str, step: str) -> str:
    """The action recording one job of a run: ``mlops-<run>-train`` / ``mlops-<run>-evaluate``."""
    return f"{LINEAGE_NAME_PREFIX}{run_name}-{step}"


def lineage_context_name(kind: str, name: str) -> str:
    """The context of an endpoint config or endpoint: ``mlops-<name>-endpoint-config`` / ``-endpoint``."""
    suffix = {LINEAGE_ENDPOINT_CONFIG: "endpoint-config", LINEAGE_ENDPOINT: "endpoint"}[kind]
    return f"{LINEAGE_NAME_PREFIX}{name}-{suffix}"


# Drift monitoring (issue 14): the Training & Evaluation DAG's evaluate job writes the training
# data's baseline in Model Monitor's format into the run's output; the drift check (the model's own
# image as a Model Monitor bring-your-own container, run by the Drift Check DAG) writes Model
# Monitor's report files per check and a summary of the newest check the trigger Lambda reads when
# the drift alarm fires.
BASELINE_STATISTICS_FILE = "statistics.json"
BASELINE_CONSTRAINTS_FILE = "constraints.json"
VIOLATIONS_FILE = "constraint_violations.json"
# Each check's folder also keeps its DriftCheckSummary under this name (the newest is copied to
# drift_summary_uri): a drift retraining's notice reads the one of the check that started it.
DRIFT_SUMMARY_FILE = "summary.json"
# Model Monitor's data-quality metrics: namespace, dimensions Endpoint and MonitoringSchedule, one
# metric per feature named by feature_drift_metric (the distance from the baseline's distribution).
DRIFT_METRICS_NAMESPACE = "aws/sagemaker/Endpoints/data-metrics"
# The number of features whose drift exceeds the threshold in the newest check, in
# MODEL_METRICS_NAMESPACE with model_metric_dimensions: the drift alarm watches it.
DRIFTED_FEATURES_METRIC = "DriftedFeatures"
# What the platform's jobs tell the model image (its contract, model_template mlops_runtime.contract):
# the evaluate job's comparison threshold for the baseline's constraints, and the drift check's
# production variants (a shadow variant's captured copies must not count); the check's copy of its
# CloudWatch metrics in its output (a processing job uploads only its outputs).
DRIFT_COMPARISON_THRESHOLD_ENV = "MLOPS_DRIFT_COMPARISON_THRESHOLD"
DRIFT_CAPTURE_VARIANTS_ENV = "MLOPS_CAPTURE_VARIANTS"
DRIFT_METRICS_COPY_FILE = "cloudwatch_metrics.jsonl"


def feature_drift_metric(feature: str) -> str:
    return f"feature_baseline_drift_{feature}"


def baseline_uri(output_uri: str) -> str:
    """Where a run's evaluate job writes the training data's baseline (statistics and constraints)."""
    return f"{output_uri.rstrip('/')}/baseline/"


def monitoring_schedule_name(project: str, model: str) -> str:
    """The endpoint's monitoring schedule (one per endpoint; the Model Monitor dimension too)."""
    return f"{model_stem(project, model)}-drift"


def monitoring_uri(bucket: str, project: str, model: str) -> str:
    return f"s3://{bucket}/{validate_name('project', project)}/{validate_name('model', model)}/monitoring/"


def monitoring_schedule_uri(bucket: str, project: str, model: str) -> str:
    """The schedule the Deployment DAG records for the model's endpoint (mlops_core.drift.MonitoringSchedule)."""
    return monitoring_uri(bucket, project, model) + "schedule.json"


DRIFT_CHECK_NAME_INFIX = "-drift-"


def drift_check_name(project: str, model: str, checked_at: datetime) -> str:
    """One check's name: its processing job and its folder (drift_check_uri). 21 characters after
    the stem (at most STEM_MAX_LENGTH): within SageMaker's 63. The model role may write the logs of
    jobs named so (mlops_constructs.sagemaker_access)."""
    return f"{model_stem(project, model)}{DRIFT_CHECK_NAME_INFIX}{checked_at.astimezone(UTC):%Y%m%d%H%M%S}"


def drift_check_uri(bucket: str, project: str, model: str, check_name: str) -> str:
    """One check's output folder: Model Monitor's statistics.json and constraint_violations.json."""
    return monitoring_uri(bucket, project, model) + f"checks/{check_name}/"


def drift_summary_uri(bucket: str, project: str, model: str) -> str:
    """The newest check's summary (mlops_core.drift.DriftCheckSummary), overwritten by every check."""
    return monitoring_uri(bucket, project, model) + "latest-check.json"


def drift_alarm_name(environment: str, project: str, model: str) -> str:
    return f"mlops-{environment}-{project}--{model}-drift"


# In a run's output folder: the model package its candidate was registered as, so a model version
# finds its package with one read instead of describing every package of the model.
REGISTRATION_FILE = "model-package.json"


def registration_uri(bucket: str, project: str, model: str, run_name: str) -> str:
    return run_output_uri(bucket, project, model, run_name) + REGISTRATION_FILE


def run_lease_uri(bucket: str, project: str, model: str, dag_id: str) -> str:
    """The object naming the one run of ``dag_id`` that may work on this model now (mlops_dags.leases)."""
    return f"s3://{bucket}/{project}/{model}/leases/{dag_id}.json"


_RUN_RE = re.compile(r"^(?P<stem>.+)-v(?P<major>\d+)-(?P<minor>\d+)-(?P<patch>\d+)-r(?P<retrain>\d+)-(?P<ts>\d{14})$")


@dataclass(frozen=True, order=True)
class RunName:
    """Name of one training run, used for its training job, processing job, model and endpoint
    config (SageMaker keeps a separate namespace per resource type).

    Format: ``{stem}-v{major}-{minor}-{patch}-r{retrain}-{YYYYmmddHHMMSS}``. Ordering sorts by
    version, then retraining number, then time, which is the order a model's history is read in.
    """

    version: semver.Version
    retrain: int
    trained_at: datetime
    stem: str

    def __post_init__(self) -> None:
        if self.version.prerelease or self.version.build:
            raise InvalidName(
                f"version={self.version} is invalid for a SageMaker run: only MAJOR.MINOR.PATCH "
                "release versions are trained"
            )
        if self.retrain < 0:
            raise InvalidName(f"retrain={self.retrain} must be >= 0")
        name = self.format()
        if len(name) > SAGEMAKER_NAME_MAX_LENGTH or not SAGEMAKER_NAME_PATTERN.fullmatch(name):
            raise InvalidName(f"run name {name!r} breaks SageMaker's 63-character name rule")

    @classmethod
    def new(
        cls,
        project: str,
        model: str,
        version: str | semver.Version,
        retrain: int,
        trained_at: datetime | None = None,
    ) -> RunName:
        when = (trained_at or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
        parsed = version if isinstance(version, semver.Version) else parse_version(version)
        return cls(version=parsed, retrain=retrain, trained_at=when, stem=model_stem(project, model))

    @classmethod
    def parse(cls, name: str) -> RunName:
        match = _RUN_RE.fullmatch(name)
        if not match:
            raise InvalidName(f"{name!r} is not a platform run name")
        return cls(
            version=semver.Version(int(match["major"]), int(match["minor"]), int(match["patch"])),
            retrain=int(match["retrain"]),
            trained_at=datetime.strptime(match["ts"], TIMESTAMP_FORMAT).replace(tzinfo=UTC),
            stem=match["stem"],
        )

    @property
    def model_version(self) -> str:
        """The model's semantic version: the image version plus the retraining number as build
        metadata, e.g. ``1.4.2+r3``."""
        return f"{self.version}+r{self.retrain}"

    def format(self) -> str:
        v = self.version
        ts = self.trained_at.strftime(TIMESTAMP_FORMAT)
        return f"{self.stem}-v{v.major}-{v.minor}-{v.patch}-r{self.retrain}-{ts}"

    def __str__(self) -> str:
        return self.format()


def run_name_prefix(
    project: str, model: str, version: str | semver.Version | None = None, retrain: int | None = None
) -> str:
    """What every run name of a model (of one image version, of one retraining of it, when given)
    starts with: a ``NameContains`` filter that narrows a SageMaker listing to those runs (the API
    matches substrings, so results are still filtered client-side)."""
    stem = model_stem(project, model)
    if version is None:
        return f"{stem}-v"
    v = version if isinstance(version, semver.Version) else parse_version(version)
    prefix = f"{stem}-v{v.major}-{v.minor}-{v.patch}-r"
    return prefix if retrain is None else f"{prefix}{retrain}-"


def parse_version(value: str) -> semver.Version:
    """Parse an image tag (``1.2.3`` or ``v1.2.3``) into a semantic version, or raise naming it."""
    text = value[1:] if isinstance(value, str) and value.startswith("v") else value
    try:
        return semver.Version.parse(text)
    except (TypeError, ValueError) as exc:
        raise InvalidName(f"version={value!r} is not a semantic version (MAJOR.MINOR.PATCH)") from exc


def _runs_of(names: list[str], project: str, model: str) -> list[RunName]:
    """The runs of one model among SageMaker names (e.g. from ``list_models``), filtered
    client-side because the API's NameContains/sorting are partial."""
    stem = model_stem(project, model)
    runs = []
    for name in names:
        try:
            run = RunName.parse(name)
        except InvalidName:
            continue
        if run.stem == stem:
            runs.append(run)
    return runs


def latest_run(names: list[str], project: str, model: str) -> RunName | None:
    """The newest run of a model among SageMaker names."""
    return max(_runs_of(names, project, model), default=None)


def last_trained_at(names: list[str], project: str, model: str) -> datetime | None:
    """When the model's most recent run started (by time, not by version), or None."""
    return max((run.trained_at for run in _runs_of(names, project, model)), default=None)


def next_retrain_number(names: list[str], project: str, model: str, version: str | semver.Version) -> int:
    """Retraining number for a new run of ``version``: 0 for its first training, then +1."""
    target = version if isinstance(version, semver.Version) else parse_version(version)
    numbers = [run.retrain for run in _runs_of(names, project, model) if run.version == target]
    return max(numbers) + 1 if numbers else 0
