"""The quality gate: may a trained candidate be offered for deployment?

Pure functions over plain values, so the rule is unit-tested without Airflow or AWS.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class GateVerdict:
    passed: bool
    metric: str
    greater_is_better: bool
    candidate: float | None
    threshold: float
    production: float | None
    max_regression: float
    reasons: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return {**asdict(self), "reasons": list(self.reasons)}

    @classmethod
    def from_dict(cls, data: dict) -> GateVerdict:
        return cls(**{**data, "reasons": tuple(data.get("reasons", ()))})

    @property
    def summary(self) -> str:
        return "PASSED" if self.passed else "REJECTED"


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return float(value)


def evaluate_gate(
    *,
    metric: str,
    greater_is_better: bool,
    threshold: float,
    max_regression: float,
    candidate_metrics: dict,
    production_metrics: dict | None,
) -> GateVerdict:
    """Compare the candidate's gating metric with the threshold and with the serving model.

    The candidate passes when it meets the threshold and is not worse than the model in
    production by more than ``max_regression``. A missing or non-numeric metric fails the gate:
    an evaluation that did not measure the gating metric is no evidence of quality. A serving
    model without a recorded metric (e.g. deployed by hand) is not compared against.
    """
    candidate = _number(candidate_metrics.get(metric))
    production = _number((production_metrics or {}).get(metric))
    reasons: list[str] = []
    if candidate is None:
        reasons.append(f"{metric} is missing from the candidate's evaluation")
    else:
        if greater_is_better and candidate < threshold:
            reasons.append(f"{metric}={candidate:.4g} is below the threshold {threshold:.4g}")
        if not greater_is_better and candidate > threshold:
            reasons.append(f"{metric}={candidate:.4g} is above the threshold {threshold:.4g}")
        if production is not None:
            if greater_is_better and candidate < production - max_regression:
                reasons.append(
                    f"{metric}={candidate:.4g} is worse than production ({production:.4g}) "
                    f"by more than the allowed {max_regression:.4g}"
                )
            if not greater_is_better and candidate > production + max_regression:
                reasons.append(
                    f"{metric}={candidate:.4g} is worse than production ({production:.4g}) "
                    f"by more than the allowed {max_regression:.4g}"
                )
    return GateVerdict(
        passed=not reasons,
        metric=metric,
        greater_is_better=greater_is_better,
        candidate=candidate,
        threshold=threshold,
        production=production,
        max_regression=max_regression,
        reasons=tuple(reasons),
    )
