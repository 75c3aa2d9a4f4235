"""Data statistics and their comparison in SageMaker Model Monitor's formats.

The evaluate job writes the training data's ``statistics.json`` and ``constraints.json`` (the
baseline); the ``monitor`` entry point writes the captured traffic's ``statistics.json`` and the
``constraint_violations.json`` of comparing it with the baseline. The formats are Model Monitor's
documented schemas ("Schema for Statistics", "Schema for Constraints", "Schema for Violations" in
the SageMaker developer guide), so SageMaker Studio and the model registry read them as Model
Monitor's own.

Every feature of the team's schema is a number, so each has ``numerical_statistics``: count, mean,
sum, standard deviation, min, max and its distribution as 10 equal-width buckets (the documented
materialisation) plus a KLL-shaped quantile sketch. The sketch keeps every value up to
``SKETCH_K`` values; above that, one compactor level keeps every 2^h-th sorted value, each standing
for 2^h values (a fully compacted KLL sketch: its rank error is below 2^h / n <= 1/1024).

The drift check is Model Monitor's ``baseline_drift_check`` with ``comparison_method: "Simple"``:
a feature drifts when the distance between its baseline and current distributions is above
``distribution_constraints.comparison_threshold``. The distance is the L-infinity distance between
the two cumulative distribution functions (the largest gap between the shares of values at or below
any point, i.e. the Kolmogorov-Smirnov statistic), read from the two sketches: 0 for the same
distribution, 1 for disjoint ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

STATISTICS_VERSION = 0
SKETCH_K = 2048
# KLL's compaction factor (capacity of level h is about k * c^(H-h)); recorded as the sketch's
# parameter, as the schema asks. A fully compacted sketch has one non-empty level.
SKETCH_C = 0.64
BUCKETS = 10
DEFAULT_COMPARISON_THRESHOLD = 0.1  # Model Monitor's documented default
COMPARISON_METHOD = "Simple"
DRIFT_CHECK = "baseline_drift_check"


def _sketch(sorted_values: np.ndarray) -> dict:
    n = len(sorted_values)
    level = 0
    while n >> level > SKETCH_K:
        level += 1
    step = 1 << level
    kept = sorted_values[step // 2 :: step] if step > 1 else sorted_values
    return {
        "parameters": {"c": SKETCH_C, "k": float(SKETCH_K)},
        "data": [[] for _ in range(level)] + [kept.tolist()],
    }


def _buckets(sorted_values: np.ndarray) -> list[dict]:
    low, high = float(sorted_values[0]), float(sorted_values[-1])
    if low == high:
        return [{"lower_bound": low, "upper_bound": high, "count": float(len(sorted_values))}]
    counts, edges = np.histogram(sorted_values, bins=BUCKETS, range=(low, high))
    return [
        {"lower_bound": float(edges[i]), "upper_bound": float(edges[i + 1]), "count": float(counts[i])}
        for i in range(BUCKETS)
    ]


def feature_statistics(name: str, values: np.ndarray) -> dict:
    """One feature's entry of statistics.json (``values`` may be empty: no present value)."""
    values = np.asarray(values, dtype=float)
    common = {"num_present": int(values.size), "num_missing": 0}
    if values.size == 0:
        return {"name": name, "inferred_type": "Unknown", "numerical_statistics": {"common": common}}
    ordered = np.sort(values)
    integral = bool(np.all(ordered == np.round(ordered)))
    return {
        "name": name,
        "inferred_type": "Integral" if integral else "Fractional",
        "numerical_statistics": {
            "common": common,
            "mean": float(ordered.mean()),
            "sum": float(ordered.sum()),
            "std_dev": float(ordered.std()),
            "min": float(ordered[0]),
            "max": float(ordered[-1]),
            "distribution": {"kll": {"buckets": _buckets(ordered), "sketch": _sketch(ordered)}},
        },
    }


def statistics(features: Sequence[str], matrix: np.ndarray) -> dict:
    """statistics.json of a data set (rows are records, columns the features in order)."""
    matrix = np.asarray(matrix, dtype=float).reshape(-1, len(features))
    return {
        "version": STATISTICS_VERSION,
        "dataset": {"item_count": int(matrix.shape[0])},
        "features": [feature_statistics(name, matrix[:, i]) for i, name in enumerate(features)],
    }


def constraints(stats: dict, comparison_threshold: float = DEFAULT_COMPARISON_THRESHOLD) -> dict:
    """constraints.json suggested by a baseline's statistics, as Model Monitor's baselining job does."""
    if not 0 < comparison_threshold <= 1:
        raise ValueError(f"comparison_threshold={comparison_threshold} must be in (0, 1]")
    features = []
    for feature in stats["features"]:
        numbers = feature["numerical_statistics"]
        features.append(
            {
                "name": feature["name"],
                "inferred_type": feature["inferred_type"],
                "completeness": 1.0,
                "num_constraints": {"is_non_negative": bool(numbers.get("min", 0.0) >= 0)},
            }
        )
    return {
        "version": STATISTICS_VERSION,
        "features": features,
        "monitoring_config": {
            "evaluate_constraints": "Enabled",
            "emit_metrics": "Enabled",
            "datatype_check_threshold": 0.1,
            "domain_content_threshold": 0.1,
            "distribution_constraints": {
                "perform_comparison": "Enabled",
                "comparison_threshold": float(comparison_threshold),
                "comparison_method": COMPARISON_METHOD,
            },
        },
    }


def _weighted_items(feature: dict) -> tuple[np.ndarray, np.ndarray]:
    """A sketch's values (sorted) and the number of values each stands for (2^level)."""
    data = feature["numerical_statistics"]["distribution"]["kll"]["sketch"]["data"]
    values = np.concatenate([np.asarray(level, dtype=float) for level in data] or [np.empty(0)])
    weights = np.concatenate(
        [np.full(len(level), float(1 << h)) for h, level in enumerate(data)] or [np.empty(0)]
    )
    order = np.argsort(values, kind="stable")
    return values[order], weights[order]


def _cdf(values: np.ndarray, weights: np.ndarray, points: np.ndarray) -> np.ndarray:
    cumulative = np.concatenate([[0.0], np.cumsum(weights)])
    return cumulative[np.searchsorted(values, points, side="right")] / cumulative[-1]


def distance(baseline_feature: dict, current_feature: dict) -> float:
    """L-infinity distance between two features' distributions, from their statistics.json entries."""
    base_values, base_weights = _weighted_items(baseline_feature)
    current_values, current_weights = _weighted_items(current_feature)
    if not base_values.size or not current_values.size:
        return 0.0
    points = np.union1d(base_values, current_values)
    gap = np.abs(_cdf(base_values, base_weights, points) - _cdf(current_values, current_weights, points))
    return float(gap.max())


def comparison_settings(baseline_constraints: dict) -> tuple[bool, float]:
    """(compare?, threshold) from constraints.json's monitoring_config; refuses what this check cannot
    honour instead of silently checking something else."""
    config = baseline_constraints.get("monitoring_config") or {}
    distribution = config.get("distribution_constraints") or {}
    enabled = config.get("evaluate_constraints", "Enabled") == "Enabled" and (
        distribution.get("perform_comparison", "Enabled") == "Enabled"
    )
    method = distribution.get("comparison_method", COMPARISON_METHOD)
    if method != COMPARISON_METHOD:
        raise ValueError(
            f"comparison_method {method!r} in the baseline constraints is not supported; this check "
            f"implements {COMPARISON_METHOD!r}"
        )
    threshold = float(distribution.get("comparison_threshold", DEFAULT_COMPARISON_THRESHOLD))
    return enabled, threshold


def compare(baseline_stats: dict, baseline_constraints: dict, current_stats: dict) -> tuple[dict, list[dict]]:
    """Each baseline feature's distance to the current data ({name: distance}; only features present
    in both) and the violations: baseline_drift_check for a distance above the threshold,
    missing_column_check for a baseline feature the current data lacks."""
    enabled, threshold = comparison_settings(baseline_constraints)
    current = {f["name"]: f for f in current_stats["features"]}
    distances: dict[str, float] = {}
    violations: list[dict] = []
    for feature in baseline_stats["features"]:
        name = feature["name"]
        if name not in current:
            violations.append(
                {
                    "feature_name": name,
                    "constraint_check_type": "missing_column_check",
                    "description": f"Feature {name} of the baseline is missing from the current data",
                }
            )
            continue
        if not current[name]["numerical_statistics"]["common"]["num_present"]:
            continue
        distances[name] = distance(feature, current[name])
        if enabled and distances[name] > threshold:
            violations.append(
                {
                    "feature_name": name,
                    "constraint_check_type": DRIFT_CHECK,
                    "description": (
                        f"Baseline drift distance: {distances[name]:.6g} exceeds threshold: {threshold:g}"
                    ),
                }
            )
    return distances, violations
