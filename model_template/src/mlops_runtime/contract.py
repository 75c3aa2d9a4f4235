"""Names shared with the MLOps platform. The template cannot import the platform's ``mlops_core``
(it is copied into other repositories), so the platform's test suite checks these values against
``mlops_core`` (tests/test_template_contract.py in the platform repository)."""

# Environment variables the Deployment DAG sets on the SageMaker model; returned with predictions.
MANIFEST_ENV = {
    "model_name": "MLOPS_MODEL_NAME",
    "model_version": "MLOPS_MODEL_VERSION",
    "training_data": "MLOPS_TRAINING_DATA",
    "trained_at": "MLOPS_TRAINED_AT",
    "source_commit": "MLOPS_SOURCE_COMMIT",
}

# Metric names in evaluation.json["metrics"]; the platform's quality gate reads them by these names.
# auc and log_loss need class probabilities from the team's predict (see metrics.py).
CLASSIFICATION_METRICS = ("f1", "precision", "recall", "accuracy", "auc", "log_loss")
REGRESSION_METRICS = ("mse", "rmse", "mae", "r2")

# The evaluate job's outputs. evaluation.json is the platform's own format (the quality gate and
# the notifications read it); model_quality.json holds the same test-set metrics in SageMaker's
# model-quality format, which the Model Registry shows when it is registered as the model
# package's ModelQuality statistics; the confusion-matrix image is attached to the package too.
EVALUATION_SCHEMA_VERSION = 1
EVALUATION_FILE = "evaluation.json"
MODEL_QUALITY_FILE = "model_quality.json"
CONFUSION_MATRIX_FILE = "confusion_matrix.png"

# Drift monitoring in SageMaker Model Monitor's formats (mlops_runtime.baseline): the evaluate job
# writes the training data's baseline (statistics and constraints) to its ``baseline`` output, which
# the platform registers as the package's DriftCheckBaselines; the ``monitor`` entry point (a Model
# Monitor bring-your-own container) writes the traffic's statistics and the violations per check.
BASELINE_STATISTICS_FILE = "statistics.json"
BASELINE_CONSTRAINTS_FILE = "constraints.json"
VIOLATIONS_FILE = "constraint_violations.json"
# Model Monitor's distance metric per feature (CloudWatch, BYOC contract).
DRIFT_METRIC_PREFIX = "feature_baseline_drift_"
# The evaluate job's setting for the baseline's distribution_constraints.comparison_threshold.
COMPARISON_THRESHOLD_ENV = "MLOPS_DRIFT_COMPARISON_THRESHOLD"
# The drift check's production variants (comma-separated): a shadow variant's captures are copies.
CAPTURE_VARIANTS_ENV = "MLOPS_CAPTURE_VARIANTS"
# The drift check's copy of its CloudWatch metrics in output_path, which the platform publishes.
METRICS_COPY_FILE = "cloudwatch_metrics.jsonl"


def feature_drift_metric(feature: str) -> str:
    return DRIFT_METRIC_PREFIX + feature


# What `serve` accepts and answers: the model package's SupportedContentTypes and
# SupportedResponseMIMETypes.
REQUEST_CONTENT_TYPES = ("application/json", "text/csv", "application/jsonlines")
RESPONSE_CONTENT_TYPES = ("application/json", "text/csv", "application/jsonlines")

# Training logs print one line per metric: "metric <split>:<name>=<value>", e.g.
# "metric validation:f1=0.912345". METRIC_DEFINITIONS is what a SageMaker training job (or Estimator)
# needs to scrape them into CloudWatch and DescribeTrainingJob's FinalMetricDataList.
METRIC_SPLITS = ("train", "validation")
METRIC_VALUE_REGEX = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"


def metric_definitions(problem_type: str) -> list[dict[str, str]]:
    names = CLASSIFICATION_METRICS if problem_type == "classification" else REGRESSION_METRICS
    return [
        {"Name": f"{split}:{name}", "Regex": f"metric {split}:{name}={METRIC_VALUE_REGEX}"}
        for split in METRIC_SPLITS
        for name in names
    ]


def metric_line(split: str, name: str, value: float) -> str:
    return f"metric {split}:{name}={value:.6f}"
