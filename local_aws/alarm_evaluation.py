"""CloudWatch evaluating a metric alarm when its metric receives data (moto stores the data but
evaluates no alarm), so a published ``DriftedFeatures`` datapoint moves the drift alarm as on AWS.

What CloudWatch documents ("Evaluating an alarm" in the CloudWatch User Guide): the alarm looks at
its last ``EvaluationPeriods`` periods of ``Period`` seconds, aggregates each with its statistic,
and goes to ``ALARM`` when at least ``DatapointsToAlarm`` (default: all) of them breach the
threshold; a period without data counts as ``TreatMissingData`` says (``notBreaching``: good,
``breaching``: bad, ``missing``/``ignore``: not counted). A state change runs the alarm's actions
(``local_aws.alarm_actions``).

Local simplifications, on purpose: alarms are evaluated when a ``PutMetricData`` reaches one of
their metrics (not every minute), over periods ending at that moment; metric-math and percentile
alarms are left alone (moto keeps their state).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from local_aws.alarm_actions import run_alarm_actions

log = logging.getLogger("local_aws.alarms")

_COMPARE = {
    "GreaterThanOrEqualToThreshold": lambda value, threshold: value >= threshold,
    "GreaterThanThreshold": lambda value, threshold: value > threshold,
    "LessThanThreshold": lambda value, threshold: value < threshold,
    "LessThanOrEqualToThreshold": lambda value, threshold: value <= threshold,
}
_AGGREGATE = {
    "Maximum": max,
    "Minimum": min,
    "Sum": sum,
    "Average": lambda values: sum(values) / len(values),
    "SampleCount": len,
}


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _dimensions(items: Any) -> frozenset[tuple[str, str]]:
    return frozenset((d.name, d.value) if hasattr(d, "name") else (d["Name"], d["Value"]) for d in items or [])


def evaluate(alarm: Any, data: list[Any], now: datetime) -> tuple[str, str] | None:
    """(new state, reason) of a single-metric alarm over ``data`` (moto's MetricDatum), or None."""
    aggregate, compare = _AGGREGATE.get(alarm.statistic or ""), _COMPARE.get(alarm.comparison_operator)
    if alarm.extended_statistic or aggregate is None or compare is None:
        return None
    wanted = _dimensions(alarm.dimensions)
    points = [
        (_aware(d.timestamp), float(d.value))
        for d in data
        if d.namespace == alarm.namespace and d.name == alarm.metric_name and _dimensions(d.dimensions) == wanted
    ]
    period = timedelta(seconds=int(alarm.period))
    missing = alarm.treat_missing_data or "missing"
    breaching = counted = 0
    values = []
    for index in range(int(alarm.evaluation_periods)):
        end = now - index * period
        in_period = [value for when, value in points if end - period < when <= end]
        if in_period:
            value = aggregate(in_period)
            values.append(value)
            counted += 1
            breaching += compare(value, float(alarm.threshold))
        elif missing in ("breaching", "notBreaching"):
            counted += 1
            breaching += missing == "breaching"
    if counted == 0:
        return None
    needed = int(alarm.datapoints_to_alarm or alarm.evaluation_periods)
    state = "ALARM" if breaching >= needed else "OK"
    reason = (
        f"Threshold Crossed: {breaching} out of the last {alarm.evaluation_periods} datapoints "
        f"{values} were {'' if state == 'ALARM' else 'not '}{alarm.comparison_operator} {alarm.threshold}"
    )
    return state, reason


def evaluate_after_put(
    *, account: str, region: str, namespace: str, metric_data: list[dict[str, Any]], iam: Any, events: Any
) -> None:
    """Evaluate the alarms on the metrics a PutMetricData just wrote; run actions on a change."""
    from moto.cloudwatch.models import cloudwatch_backends

    backend = cloudwatch_backends[account][region]
    touched = {(d.get("MetricName"), _dimensions(d.get("Dimensions"))) for d in metric_data}
    now = datetime.now(UTC)
    for alarm in list(backend.alarms.values()):
        if alarm.namespace != namespace or (alarm.metric_name, _dimensions(alarm.dimensions)) not in touched:
            continue
        outcome = evaluate(alarm, backend.metric_data, now)
        if outcome is None or outcome[0] == alarm.state_value:
            continue
        old_state = alarm.state_value
        backend.set_alarm_state(alarm.name, outcome[1], "{}", outcome[0])
        log.info("alarm %s: %s -> %s (%s)", alarm.name, old_state, outcome[0], outcome[1])
        run_alarm_actions(account=account, region=region, name=alarm.name, old_state=old_state, iam=iam, events=events)
