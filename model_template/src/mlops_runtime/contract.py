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
CLASSIFICATION_METRICS = ("f1", "precision", "recall", "accuracy")
REGRESSION_METRICS = ("mse", "mae", "r2")

EVALUATION_SCHEMA_VERSION = 1
EVALUATION_FILE = "evaluation.json"
CONFUSION_MATRIX_FILE = "confusion_matrix.png"

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
