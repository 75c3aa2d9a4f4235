"""Every range a pipeline setting can break is refused at synth, at the field that breaks it: a gate
threshold a metric can never reach, a regression allowance that lets anything through, SageMaker's
hyperparameter limits (CreateTrainingJob: at most 100, keys up to 256 and values up to 2,500
characters)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from test_pipeline_config import BASE

from mlops_core.pipeline_config import METRIC_RANGES, PipelineConfig, QualityGate, TrainingSettings


def _error(**gate) -> dict:
    with pytest.raises(ValidationError) as failure:
        QualityGate(**gate)
    [error] = failure.value.errors()
    return error


@pytest.mark.parametrize(
    "gate,field,message",
    [
        (
            {"metric": "f1", "threshold": 1.5},
            "threshold",
            "f1 lies between 0 and 1 and a candidate must reach the threshold, so 1.5 can never pass: use a "
            "threshold between 0 and 1, e.g. 0.85",
        ),
        ({"metric": "accuracy", "threshold": -0.1}, "threshold", "accuracy lies between 0 and 1"),
        (
            {"metric": "mse", "threshold": -1},
            "threshold",
            "mse is an error (0 or more) and the threshold is the largest mse a candidate may have, so -1 can "
            "never pass: use a threshold of 0 or more, e.g. 0.25",
        ),
        ({"metric": "r2", "threshold": 1.2}, "threshold", "r2 is never above 1"),
        (
            {"metric": "f1", "threshold": 0.8, "max_regression": 2},
            "max_regression",
            "f1 lies between 0 and 1, so a regression of 2 allows any candidate: use at most 1 (e.g. 0.01)",
        ),
        ({"metric": "f1", "threshold": float("nan")}, "threshold", "Input should be a finite number"),
        ({"metric": "mae", "threshold": float("inf")}, "threshold", "Input should be a finite number"),
        ({"metric": "F1", "threshold": 0.8}, "metric", "Input should be 'f1', 'precision', 'recall'"),
    ],
)
def test_a_gate_that_can_never_pass_or_lets_anything_through_is_refused_at_its_field(gate, field, message):
    error = _error(**gate)
    assert error["loc"] == (field,)
    assert error["msg"].startswith(message)


@pytest.mark.parametrize(("metric", "threshold"), [("f1", 0.0), ("f1", 1.0), ("mse", 0.0), ("mse", 1e6), ("r2", -3.0)])
def test_every_threshold_within_the_metric_s_range_is_accepted(metric, threshold):
    assert QualityGate(metric=metric, threshold=threshold).threshold == threshold


def test_a_regression_error_gate_is_a_maximum_and_r2_a_minimum():
    assert QualityGate(metric="mse", threshold=0.2).greater_is_better is False
    assert QualityGate(metric="mae", threshold=0.2).greater_is_better is False
    assert QualityGate(metric="r2", threshold=0.7).greater_is_better is True
    assert QualityGate(metric="log_loss", threshold=0.3).greater_is_better is False
    assert set(METRIC_RANGES) == {
        "f1",
        "precision",
        "recall",
        "accuracy",
        "auc",
        "log_loss",
        "mse",
        "rmse",
        "mae",
        "r2",
    }
    assert METRIC_RANGES["log_loss"] == (0.0, None)


def test_a_gate_metric_of_the_other_problem_type_is_reported_at_gate_metric_not_the_root():
    with pytest.raises(ValidationError) as failure:
        PipelineConfig.model_validate({**BASE, "gate": {"metric": "mse", "threshold": 0.1}})
    [error] = failure.value.errors()
    assert error["loc"] == ("gate", "metric")
    assert error["msg"] == (
        "'mse' is not a classification metric (problem_type='classification'): gate on one of f1, precision, "
        "recall, accuracy, auc, log_loss"
    )


@pytest.mark.parametrize(
    "hyperparameters,message",
    [
        ({f"h{i}": i for i in range(101)}, "101 hyperparameters; a SageMaker training job takes at most 100"),
        ({"k" * 257: 1}, "must have 1 to 256 characters"),
        ({"notes": "x" * 2501}, "hyperparameter 'notes' has 2501 characters; SageMaker takes at most 2500"),
        ({"rate": float("nan")}, "hyperparameter 'rate'=nan is not a finite number"),
    ],
)
def test_hyperparameters_outside_sagemaker_s_limits_are_refused(hyperparameters, message):
    with pytest.raises(ValidationError, match="hyperparameters") as failure:
        TrainingSettings(hyperparameters=hyperparameters)
    assert message in str(failure.value)
