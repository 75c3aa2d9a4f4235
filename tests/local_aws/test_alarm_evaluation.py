"""Local CloudWatch's alarm evaluation against what CloudWatch documents ("Evaluating an alarm",
CloudWatch User Guide): the last EvaluationPeriods periods, each aggregated with the alarm's
statistic; ALARM when DatapointsToAlarm of them breach; missing periods as TreatMissingData says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from local_aws.alarm_evaluation import evaluate

NOW = datetime(2026, 12, 5, 9, tzinfo=UTC)
DIMS = [SimpleNamespace(name="Model", value="m")]


def alarm(**overrides):
    fields = dict(
        namespace="MLOps/Models",
        metric_name="DriftedFeatures",
        dimensions=DIMS,
        statistic="Maximum",
        extended_statistic=None,
        comparison_operator="GreaterThanOrEqualToThreshold",
        threshold=1.0,
        period=3600,
        evaluation_periods=1,
        datapoints_to_alarm=None,
        treat_missing_data="notBreaching",
    )
    fields.update(overrides)
    return SimpleNamespace(**fields)


def datum(value, minutes_ago=1, dims=DIMS, name="DriftedFeatures"):
    return SimpleNamespace(
        namespace="MLOps/Models",
        name=name,
        dimensions=dims,
        value=value,
        timestamp=NOW - timedelta(minutes=minutes_ago),
    )


@pytest.mark.parametrize(
    ("data", "state"),
    [
        ([datum(2)], "ALARM"),
        ([datum(0)], "OK"),
        ([datum(0), datum(3, minutes_ago=30)], "ALARM"),  # Maximum over the period
        ([datum(3, minutes_ago=61)], "OK"),  # outside the period: missing, not breaching
        ([datum(3, dims=[SimpleNamespace(name="Model", value="other")])], "OK"),  # another model's
    ],
)
def test_the_newest_period_decides_a_one_period_alarm(data, state):
    assert evaluate(alarm(), data, NOW)[0] == state


def test_datapoints_to_alarm_of_evaluation_periods():
    two_of_three = alarm(period=60, evaluation_periods=3, datapoints_to_alarm=2)
    assert evaluate(two_of_three, [datum(1, 0.5), datum(1, 1.5)], NOW)[0] == "ALARM"
    assert evaluate(two_of_three, [datum(1, 0.5)], NOW)[0] == "OK"


def test_missing_data_is_counted_as_configured():
    assert evaluate(alarm(treat_missing_data="breaching"), [], NOW)[0] == "ALARM"
    assert evaluate(alarm(treat_missing_data="notBreaching"), [], NOW)[0] == "OK"
    assert evaluate(alarm(treat_missing_data="missing"), [], NOW) is None  # the state stays


def test_percentile_alarms_are_left_alone():
    assert evaluate(alarm(statistic=None, extended_statistic="p99"), [datum(5)], NOW) is None
