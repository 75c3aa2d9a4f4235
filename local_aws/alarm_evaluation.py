"""CloudWatch evaluates metric alarms: moto stores metric data and alarms but never evaluates one.

An alarm watching a metric the platform publishes itself (the drift alarm on ``DriftedFeatures``,
the evaluation metrics) must change state when data arrives, as on AWS, so that its actions run
(local_aws.alarm_actions). Local AWS evaluates, after each PutMetricData, the alarms on the metrics
that call wrote, with CloudWatch's documented rules (CloudWatch User Guide, "Using Amazon
CloudWatch alarms": "Evaluating an alarm" and "Configuring how CloudWatch alarms treat missing
data"):

- the alarm looks at its ``EvaluationPeriods`` most recent periods of ``Period`` seconds, each
  reduced to the alarm's statistic (Average, Sum, Minimum, Maximum, SampleCount);
- it goes to ALARM when at least ``DatapointsToAlarm`` (default: ``EvaluationPeriods``) of them
  breach the threshold, to OK otherwise;
- a period without data counts as not breaching (``notBreaching``), breaching (``breaching``), is
  left out (``missing``, the default: with no data in any period the alarm goes to
  INSUFFICIENT_DATA) or keeps the current state when every period is empty (``ignore``).

What differs from AWS, and why it does not matter here: AWS evaluates every minute on a schedule;
local AWS evaluates when data arrives, so an alarm changes state at the same data, sooner. Alarms on
metric math and on metrics local AWS serves itself (``AWS/SageMaker``, local_aws.sagemaker.
endpoint_metrics) and percentile alarms are not evaluated: tests set those with SetAlarmState.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

log = logging.getLogger("local_aws.alarms")

_COMPARE = {
    "GreaterThanOrEqualToThreshold": lambda value, threshold: value >= threshold,
    "GreaterThanThreshold": lambda value, threshold: value > threshold,
    "LessThanThreshold": lambda value, threshold: value < threshold,
    "LessThanOrEqualToThreshold": lambda value, threshold: value <= threshold,
}


def metric_data_count(account: str, region: str) -> int:
    from moto.cloudwatch.models import cloudwatch_backends

    return len(cloudwatch_backends[account][region].metric_data)


def evaluate_after_put(*, account: str, region: str, since: int, iam: Any, events: Any) -> None:
    """Evaluate the alarms on the metrics written since ``metric_data[since]`` and run the actions
    of those whose state changed."""
    from moto.cloudwatch.models import cloudwatch_backends

    from local_aws.alarm_actions import run_alarm_actions

    backend = cloudwatch_backends[account][region]
    written = {_key(datum.namespace, datum.name, datum.dimensions) for datum in backend.metric_data[since:]}
    if not written:
        return
    now = datetime.now(UTC)
    for alarm in list(backend.alarms.values()):
        if (
            not alarm.metric_name
            or alarm.extended_statistic
            or _key(alarm.namespace, alarm.metric_name, alarm.dimensions) not in written
        ):
            continue
        values = _period_values(backend.metric_data, alarm, now)
        state, reason = decide(
            values,
            statistic_threshold=float(alarm.threshold),
            comparison=alarm.comparison_operator,
            datapoints_to_alarm=int(alarm.datapoints_to_alarm or alarm.evaluation_periods),
            treat_missing_data=alarm.treat_missing_data or "missing",
            current_state=alarm.state_value,
        )
        if state == alarm.state_value:
            continue
        old_state = alarm.state_value
        data = {
            "version": "1.0",
            "queryDate": now.isoformat(),
            "recentDatapoints": [v for v in values if v is not None],
        }
        alarm.update_state(reason, json.dumps(data), state)
        log.info("alarm %s: %s -> %s (%s)", alarm.name, old_state, state, reason)
        run_alarm_actions(account=account, region=region, name=alarm.name, old_state=old_state, iam=iam, events=events)


def decide(
    values: list[float | None],
    *,
    statistic_threshold: float,
    comparison: str,
    datapoints_to_alarm: int,
    treat_missing_data: str,
    current_state: str,
) -> tuple[str, str]:
    """The alarm's state for its periods' values (newest last; None: no data in that period)."""
    compare = _COMPARE[comparison]
    present = [value for value in values if value is not None]
    if not present:
        if treat_missing_data == "ignore":
            return current_state, "no data: state kept (treat missing data: ignore)"
        if treat_missing_data == "missing":
            return "INSUFFICIENT_DATA", "no datapoints in the evaluation periods"
    breaching = 0
    for value in values:
        if value is None:
            breaching += treat_missing_data == "breaching"
        else:
            breaching += compare(value, statistic_threshold)
    verdict = "ALARM" if breaching >= datapoints_to_alarm else "OK"
    shown = ", ".join("missing" if v is None else f"{v:g}" for v in values)
    return verdict, (
        f"Threshold Crossed: {breaching} out of the last {len(values)} datapoints [{shown}] "
        f"{'were' if verdict == 'ALARM' else 'were not enough'} {comparison} {statistic_threshold:g} "
        f"({datapoints_to_alarm} needed)"
    )


def _period_values(metric_data: list[Any], alarm: Any, now: datetime) -> list[float | None]:
    period = timedelta(seconds=int(alarm.period))
    key = _key(alarm.namespace, alarm.metric_name, alarm.dimensions)
    data = [datum for datum in metric_data if _key(datum.namespace, datum.name, datum.dimensions) == key]
    values: list[float | None] = []
    for index in range(int(alarm.evaluation_periods), 0, -1):
        start, end = now - index * period, now - (index - 1) * period
        inside = [datum for datum in data if start < _timestamp(datum) <= end]
        values.append(_statistic(alarm.statistic or "Average", inside) if inside else None)
    return values


def _statistic(statistic: str, data: list[Any]) -> float:
    samples, total, low, high = 0.0, 0.0, float("inf"), float("-inf")
    for datum in data:
        if hasattr(datum, "sample_count"):  # StatisticValues
            samples += datum.sample_count
            total += datum.sum_stat
            low, high = min(low, datum.min_stat), max(high, datum.max_stat)
        else:
            samples += 1
            total += datum.value
            low, high = min(low, datum.value), max(high, datum.value)
    return {
        "Average": total / samples if samples else 0.0,
        "Sum": total,
        "Minimum": low,
        "Maximum": high,
        "SampleCount": samples,
    }[statistic]


def _timestamp(datum: Any) -> datetime:
    value = datum.timestamp
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _key(namespace: str, name: str, dimensions: Any) -> tuple[str, str, frozenset]:
    pairs = frozenset((d["Name"], d["Value"]) if isinstance(d, dict) else (d.name, d.value) for d in (dimensions or []))
    return namespace, name, pairs
