"""The drift baseline and check (mlops_runtime.baseline, mlops_runtime.monitor) against SageMaker
Model Monitor's documented formats and behaviour:

- statistics.json / constraints.json: "Schema for Statistics" and "Schema for Constraints"
  (numerical_statistics with common, mean, sum, std_dev, min, max and a KLL distribution of 10
  buckets and a sketch of {"parameters": {"c", "k"}, "data": [[...], ...]});
- constraint_violations.json: "Schema for Violations", where baseline_drift_check is flagged "if the
  calculated distribution distance between the current and the baseline datasets is more than the
  threshold specified in monitoring_config.comparison_threshold" (comparison_method "Simple"; the
  distance is the L-infinity distance between the distributions);
- the container's inputs and outputs: "Container Contract Inputs/Outputs" and "CloudWatch Metrics
  for Bring Your Own Containers" (JSON metrics with MetricName, Timestamp, Dimensions Endpoint and
  MonitoringSchedule, Value).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from template_testing import (
    CAPTURE_ENDPOINT,
    SHIFTED_FEATURES,
    monitor_environment,
    run_entry_point,
    traffic,
    write_baseline,
    write_captures,
)

import team_model
from mlops_runtime import baseline, contract, monitor
from mlops_runtime.paths import MLPaths

START = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def baseline_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("baseline")
    write_baseline(folder)
    return folder


def _inputs(tmp_path, baseline_dir, **overrides) -> monitor.MonitorInputs:
    values = {
        "dataset_source": tmp_path / "endpointdata",
        "output_path": tmp_path / "resultdata",
        "baseline_statistics": baseline_dir / "statistics.json",
        "baseline_constraints": baseline_dir / "constraints.json",
        "start_time": START,
        "end_time": START + timedelta(hours=2),
        "endpoint_name": CAPTURE_ENDPOINT,
        "schedule_name": "process-events--classifier-drift",
        "publish_metrics": True,
        "variants": ("AllTraffic",),
    }
    return monitor.MonitorInputs(**{**values, **overrides})


def test_statistics_follow_model_monitors_schema():
    X = np.column_stack([np.arange(5000, dtype=float), np.linspace(0.5, 1.5, 5000)])
    stats = baseline.statistics(("count", "ratio"), X)
    assert stats["version"] == 0 and stats["dataset"] == {"item_count": 5000}
    count, ratio = stats["features"]
    assert (count["name"], count["inferred_type"], ratio["inferred_type"]) == (
        "count",
        "Integral",
        "Fractional",
    )
    numbers = count["numerical_statistics"]
    assert numbers["common"] == {"num_present": 5000, "num_missing": 0}
    assert (numbers["min"], numbers["max"], numbers["sum"]) == (0.0, 4999.0, float(sum(range(5000))))
    assert numbers["mean"] == pytest.approx(2499.5) and numbers["std_dev"] == pytest.approx(X[:, 0].std())
    kll = numbers["distribution"]["kll"]
    assert len(kll["buckets"]) == 10 and sum(b["count"] for b in kll["buckets"]) == 5000
    assert set(kll["sketch"]) == {"parameters", "data"} and set(kll["sketch"]["parameters"]) == {"c", "k"}
    # 5000 values > k: compacted to one level of every 4th value, each standing for 4.
    assert [len(level) for level in kll["sketch"]["data"]] == [0, 0, 1250]


def test_constraints_follow_model_monitors_schema_with_the_threshold():
    stats = baseline.statistics(("a",), np.array([[1.0], [-2.0]]))
    document = baseline.constraints(stats, 0.25)
    assert document["features"] == [
        {
            "name": "a",
            "inferred_type": "Integral",
            "completeness": 1.0,
            "num_constraints": {"is_non_negative": False},
        }
    ]
    distribution = document["monitoring_config"]["distribution_constraints"]
    assert distribution == {
        "perform_comparison": "Enabled",
        "comparison_threshold": 0.25,
        "comparison_method": "Simple",
    }
    assert baseline.comparison_settings(document) == (True, 0.25)


def test_distance_is_the_largest_gap_between_the_cumulative_distributions():
    rng = np.random.default_rng(1)
    same = [baseline.feature_statistics("x", rng.normal(0, 1, n)) for n in (3000, 50_000)]
    shifted = baseline.feature_statistics("x", rng.normal(0.5, 1, 50_000))
    disjoint = baseline.feature_statistics("x", rng.normal(100, 1, 1000))
    assert baseline.distance(same[0], same[1]) < 0.05
    # Normal(0,1) vs Normal(0.5,1): the KS distance is 2*Phi(0.25)-1 = 0.197.
    assert baseline.distance(same[0], shifted) == pytest.approx(0.197, abs=0.03)
    assert baseline.distance(same[0], disjoint) == 1.0
    # Exact below k values: {0,1} vs {0,0,0,1} differ by 0.75 - 0.5 at 0.
    assert baseline.distance(
        baseline.feature_statistics("f", np.array([0.0, 1.0])),
        baseline.feature_statistics("f", np.array([0.0, 0, 0, 1])),
    ) == pytest.approx(0.25)


def test_a_method_the_check_does_not_implement_is_refused():
    with pytest.raises(ValueError, match="'Robust'.*not supported"):
        baseline.comparison_settings(
            {"monitoring_config": {"distribution_constraints": {"comparison_method": "Robust"}}}
        )


def test_shifted_traffic_drifts_in_the_shifted_features_only(tmp_path, baseline_dir):
    write_captures(
        tmp_path / "endpointdata", traffic(3000, seed=7, shifted=True), START, styles=("csv", "json", "b64")
    )
    inputs = _inputs(tmp_path, baseline_dir)
    result = monitor.run(inputs, MLPaths(tmp_path / "opt_ml"))
    assert result["records"] == 3000
    violations = json.loads((inputs.output_path / "constraint_violations.json").read_text())["violations"]
    assert {v["feature_name"] for v in violations} == set(SHIFTED_FEATURES)
    assert {v["constraint_check_type"] for v in violations} == {"baseline_drift_check"}
    assert all(v["description"].startswith("Baseline drift distance: ") for v in violations)
    current = json.loads((inputs.output_path / "statistics.json").read_text())
    assert current["dataset"]["item_count"] == 3000
    assert [f["name"] for f in current["features"]] == list(team_model.FEATURES)
    # The BYOC contract's metrics, where Model Monitor reads them and in the output for the DAG.
    lines = (
        (tmp_path / "opt_ml" / "output" / "metrics" / "cloudwatch" / "metrics.jsonl").read_text().splitlines()
    )
    assert lines == (inputs.output_path / monitor.METRICS_COPY_FILE).read_text().splitlines()
    metrics = [json.loads(line) for line in lines]
    assert {m["MetricName"] for m in metrics} == {
        contract.feature_drift_metric(f) for f in team_model.FEATURES
    }
    assert all(
        m["Dimensions"]
        == [
            {"Name": "Endpoint", "Value": inputs.endpoint_name},
            {"Name": "MonitoringSchedule", "Value": inputs.schedule_name},
        ]
        and m["Timestamp"] == "2026-12-05T10:00:00Z"
        for m in metrics
    )
    by_name = {m["MetricName"]: m["Value"] for m in metrics}
    assert (
        by_name["feature_baseline_drift_cmdline_length"] > 0.1 > by_name["feature_baseline_drift_hour_of_day"]
    )


def test_unshifted_traffic_does_not_drift(tmp_path, baseline_dir):
    write_captures(tmp_path / "endpointdata", traffic(3000, seed=8), START, styles=("json", "csv"))
    result = monitor.run(_inputs(tmp_path, baseline_dir), MLPaths(tmp_path / "opt_ml"))
    assert result["records"] == 3000 and result["violations"] == []
    assert max(result["distances"].values()) < 0.1


def test_only_production_variants_in_the_window_count(tmp_path, baseline_dir):
    source = tmp_path / "endpointdata"
    write_captures(source, traffic(1000, seed=9), START)
    # The shadow variant's copies of the same requests, and shifted traffic after the window.
    write_captures(source, traffic(1000, seed=9, shifted=True), START, variant="Shadow")
    write_captures(source, traffic(500, seed=10, shifted=True), START + timedelta(hours=2))
    result = monitor.run(_inputs(tmp_path, baseline_dir), MLPaths(tmp_path / "opt_ml"))
    assert result["records"] == 1000 and result["violations"] == []


def test_no_traffic_writes_empty_statistics_and_no_metrics(tmp_path, baseline_dir):
    inputs = _inputs(tmp_path, baseline_dir)
    result = monitor.run(inputs, MLPaths(tmp_path / "opt_ml"))
    assert result == {"records": 0, "distances": {}, "violations": []}
    assert json.loads((inputs.output_path / "statistics.json").read_text())["dataset"]["item_count"] == 0
    assert not (inputs.output_path / monitor.METRICS_COPY_FILE).exists()


def test_monitor_entry_point_reads_the_contracts_environment(tmp_path, baseline_dir):
    write_captures(tmp_path / "endpointdata", traffic(500, seed=11, shifted=True), START)
    env = monitor_environment(tmp_path, baseline_dir, START, START + timedelta(hours=1), publish=False)
    result = run_entry_point("monitor", tmp_path / "opt_ml", **env)
    assert result.returncode == 0, result.stderr
    assert "checked 500 records in 500 requests" in result.stdout
    assert "drifted: cmdline_length, network_connections" in result.stdout
    assert not (tmp_path / "resultdata" / monitor.METRICS_COPY_FILE).exists()  # publishing disabled

    bad = run_entry_point("monitor", tmp_path / "opt_ml2", **{**env, "end_time": "2026-12-05T07:00:00Z"})
    assert bad.returncode == 1
    assert (
        "end_time 2026-12-05T07:00:00+00:00 is not after start_time"
        in (tmp_path / "opt_ml2" / "output" / "message").read_text()
    )
