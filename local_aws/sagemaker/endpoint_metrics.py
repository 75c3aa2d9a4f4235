"""The per-variant invocation metrics SageMaker publishes to CloudWatch, read back with the real
CloudWatch API (moto's GetMetricStatistics / GetMetricData).

SageMaker publishes them itself (no role of the account is involved), in namespace ``AWS/SageMaker``
with dimensions ``EndpointName`` and ``VariantName``; a shadow variant's metrics carry the shadow
variant's name (the shadow test dashboard compares production and shadow per variant). Per the
CloudWatch metrics reference for SageMaker: ``Invocations`` (count, statistic Sum),
``Invocation4XXErrors`` / ``Invocation5XXErrors`` (1 or 0 per request, so Average is the error rate
and Sum the count), ``ModelLatency`` and ``OverheadLatency`` in microseconds.

The runtime only appends a tuple per invocation (nothing on the request's path talks to CloudWatch);
the tuples become CloudWatch data points when CloudWatch is read, through moto's hook for metrics
that AWS services publish (``CloudWatchMetricProvider``).

moto computes no percentile statistics; AWS computes them for ``GetMetricData`` (``Stat: "p99"``),
which the deployment DAG reads, so this module adds them to moto's statistics (nearest rank over the
period's values: AWS's percentiles are estimates over the same values).

The store is bounded: each region keeps the data points of its latest ``MAX_INVOCATIONS``
invocations (the oldest are dropped first), and invocations not yet read are bounded the same way,
so a long ``--keep-running`` session or a load test cannot exhaust memory. CloudWatch keeps far more
(1-minute points for 15 days): a read over a window older than the kept invocations finds fewer.
"""

from __future__ import annotations

import math
import re
import threading
from collections import deque
from datetime import UTC, datetime
from typing import Any

from moto.cloudwatch.models import MetricDatum, Statistics
from moto.core.common_models import CloudWatchMetricProvider

from local_aws.sagemaker.core import ACCOUNT_ID

NAMESPACE = "AWS/SageMaker"
MICROSECONDS = "Microseconds"
MAX_INVOCATIONS = 100_000  # per region: about 2 kB each (5 data points), so at most ~200 MB
_METRICS_PER_INVOCATION = 5


class EndpointMetrics:
    def __init__(self, max_invocations: int = MAX_INVOCATIONS) -> None:
        self._max = max_invocations
        self._pending: deque[tuple[Any, ...]] = deque(maxlen=max_invocations)
        self._lock = threading.Lock()
        self._published: dict[str, deque[MetricDatum]] = {}

    def record(
        self, region: str, endpoint: str, variant: str, *, model_us: float, overhead_us: float, status: int
    ) -> None:
        """One invocation answered by ``variant`` with the container's HTTP ``status``."""
        self._pending.append(
            (datetime.now(UTC).replace(tzinfo=None), region, endpoint, variant, model_us, overhead_us, status)
        )

    def data(self, region: str) -> list[MetricDatum]:
        with self._lock:
            while self._pending:
                when, where, endpoint, variant, model_us, overhead_us, status = self._pending.popleft()
                dimensions = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}]
                kept = self._published.setdefault(where, deque(maxlen=self._max * _METRICS_PER_INVOCATION))
                kept.extend(
                    MetricDatum(NAMESPACE, name, value, dimensions, when, unit)
                    for name, value, unit in (
                        ("Invocations", 1.0, "None"),
                        ("Invocation4XXErrors", float(400 <= status < 500), "None"),
                        ("Invocation5XXErrors", float(status >= 500), "None"),
                        ("ModelLatency", model_us, MICROSECONDS),
                        ("OverheadLatency", overhead_us, MICROSECONDS),
                    )
                )
            return list(self._published.get(region, []))

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()
            self._published.clear()


METRICS = EndpointMetrics()


class SageMakerEndpointMetricProvider(CloudWatchMetricProvider):
    """moto asks every subclass for the metrics its service published (``aws_metric_data``)."""

    @staticmethod
    def get_cloudwatch_metrics(account_id: str, region: str) -> list[MetricDatum]:
        return METRICS.data(region) if account_id == ACCOUNT_ID else []


_PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d+)?)$")


def percentile(values: list[float], rank: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(rank / 100 * len(ordered))) - 1]


def _install_percentiles() -> None:
    original = Statistics.get_statistics_for_type
    if getattr(original, "_with_percentiles", False):
        return

    def get_statistics_for_type(self: Statistics, stat: str) -> Any:
        match = _PERCENTILE.match(stat)
        if match is None:
            return original(self, stat)
        return percentile(self.metric_single_values_list, float(match.group(1)))

    get_statistics_for_type._with_percentiles = True  # type: ignore[attr-defined]
    Statistics.get_statistics_for_type = get_statistics_for_type  # type: ignore[method-assign]


_install_percentiles()
