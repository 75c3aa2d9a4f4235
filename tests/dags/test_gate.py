"""The quality gate decides whether a candidate can ever be deployed."""

from __future__ import annotations

import math

import pytest
from mlops_dags.gate import GateVerdict, evaluate_gate


def gate(candidate, production=None, *, metric="f1", higher=True, threshold=0.8, max_regression=0.0):
    return evaluate_gate(
        metric=metric,
        greater_is_better=higher,
        threshold=threshold,
        max_regression=max_regression,
        candidate_metrics={metric: candidate} if candidate is not ... else {},
        production_metrics=None if production is None else {metric: production},
    )


def test_first_model_passes_on_the_threshold_alone():
    verdict = gate(0.85)
    assert verdict.passed and verdict.production is None and verdict.reasons == ()


def test_below_threshold_is_rejected_with_the_numbers_in_the_reason():
    verdict = gate(0.75)
    assert not verdict.passed
    assert verdict.reasons == ("f1=0.75 is below the threshold 0.8",)


def test_exactly_the_threshold_passes():
    assert gate(0.8).passed


def test_worse_than_production_is_rejected_even_above_threshold():
    verdict = gate(0.85, production=0.9)
    assert not verdict.passed
    assert "worse than production (0.9)" in verdict.reasons[0]


def test_allowed_regression_tolerates_a_small_drop():
    assert gate(0.85, production=0.9, max_regression=0.05).passed
    assert not gate(0.84, production=0.9, max_regression=0.05).passed


def test_lower_is_better_metrics_compare_the_other_way():
    assert gate(0.2, production=0.25, metric="mse", higher=False, threshold=0.3).passed
    verdict = gate(0.35, production=0.25, metric="mse", higher=False, threshold=0.3)
    assert not verdict.passed and len(verdict.reasons) == 2
    assert "above the threshold" in verdict.reasons[0]


@pytest.mark.parametrize("value", [..., None, "0.9", math.nan, True])
def test_missing_or_non_numeric_metric_fails_the_gate(value):
    verdict = gate(value)
    assert not verdict.passed
    assert verdict.reasons == ("f1 is missing from the candidate's evaluation",)


def test_production_without_the_metric_is_not_compared():
    verdict = evaluate_gate(
        metric="f1",
        greater_is_better=True,
        threshold=0.5,
        max_regression=0,
        candidate_metrics={"f1": 0.6},
        production_metrics={"accuracy": 0.99},
    )
    assert verdict.passed and verdict.production is None


def test_verdict_round_trips_through_xcom_json():
    import json

    verdict = gate(0.7, production=0.9)
    again = GateVerdict.from_dict(json.loads(json.dumps(verdict.to_dict())))
    assert again == verdict
