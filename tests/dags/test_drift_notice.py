"""A drift retraining's notice: what drifted, by how much, and where to look.

The check's own summary is read from (local) S3 where the Drift Check DAG writes it
(``names.drift_check_uri(...) + DRIFT_SUMMARY_FILE``), as the notify task does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from mlops_dags import messages, training
from test_messages import VERDICT_PASS, block_texts, result

from mlops_core import names
from mlops_core.drift import DriftCheckSummary, FeatureDrift

PROJECT, MODEL, CHECK = "fraud", "scorer", "fraud--scorer-drift-20261205080000"
BUCKET = "mlops-dev-artifacts-notice"


def _summary() -> DriftCheckSummary:
    now = datetime(2026, 12, 5, 8, tzinfo=UTC)
    check = names.drift_check_uri(BUCKET, PROJECT, MODEL, CHECK)
    return DriftCheckSummary(
        project=PROJECT,
        model=MODEL,
        endpoint_name=names.endpoint_name(PROJECT, MODEL),
        schedule_name=names.monitoring_schedule_name(PROJECT, MODEL),
        check_name=CHECK,
        checked_at=now,
        window_start=now - timedelta(hours=1),
        window_end=now,
        records=1200,
        model_version="1.4.2+r2",
        image_tag="1.4.2",
        drifted=[
            FeatureDrift(
                name="amount",
                distance=0.42,
                threshold=0.1,
                baseline={"mean": 10.0, "stddev": 2.0},
                current={"mean": 25.5, "stddev": 2.5},
            )
        ],
        report_uri=check,
        violations_uri=check + names.VIOLATIONS_FILE,
        cool_down_hours=24,
    )


@pytest.fixture
def config():
    return SimpleNamespace(
        artifact_bucket=BUCKET, environment="dev", endpoint=SimpleNamespace(dashboard_name="mlops-dev-fraud--scorer")
    )


RUN = {"project": PROJECT, "model": MODEL, "reason": "drift", "drift_check": CHECK, "drifted_features": ["amount"]}


def test_the_notice_names_the_drifted_features_with_their_statistics_and_links_report_and_dashboard(
    local_aws, boto, config
):
    s3 = boto.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    key = names.drift_check_uri(BUCKET, PROJECT, MODEL, CHECK).removeprefix(f"s3://{BUCKET}/")
    s3.put_object(Bucket=BUCKET, Key=key + names.DRIFT_SUMMARY_FILE, Body=_summary().model_dump_json().encode())

    note = result(VERDICT_PASS, drift=training.drift_notice(RUN, config))
    assert note.subject.startswith("[mlops-dev] Drift retraining fraud/scorer 1.4.2+r3")
    text = note.text
    assert f"the drift check {CHECK} found 1 drifted feature(s) in 1200 captured records" in text
    assert "amount: distance 0.4200 > threshold 0.1000" in text
    assert "baseline: mean 10.0000, stddev 2.0000" in text and "current:  mean 25.5000, stddev 2.5000" in text
    violations_key = key + names.VIOLATIONS_FILE
    assert f"https://s3.console.aws.amazon.com/s3/object/{BUCKET}?region=" in text and violations_key in text
    assert "#dashboards/dashboard/mlops-dev-fraud--scorer" in text
    slack = block_texts(note)
    assert "*amount*: distance 0.4200 > 0.1000" in slack and "current: mean 25.5000, stddev 2.5000" in slack
    buttons = [e for b in note.blocks if b["type"] == "actions" for e in b["elements"]]
    assert [b["text"]["text"] for b in buttons] == ["Violations report", "Open dashboard"]


def test_without_the_summary_the_notice_still_names_the_features_from_the_conf(local_aws, boto, config):
    drift = training.drift_notice({**RUN, "drift_check": "fraud--scorer-drift-gone"}, config)
    note = result(VERDICT_PASS, drift=drift)
    assert "drifted: amount (statistics unavailable)" in note.text
    assert "fraud--scorer-drift-gone/constraint_violations.json" in note.text


def test_a_retraining_for_another_reason_has_no_drift_section():
    note = messages.training_result(**{**_result_kwargs(), "drift": None})
    assert "Drift" not in note.subject and "drift check" not in note.text


def _result_kwargs():

    return {
        "environment": "dev",
        "project": PROJECT,
        "model": MODEL,
        "run_name": "r",
        "model_version": "1.4.2+r3",
        "retraining": True,
        "image_uri": "i",
        "training_data": "s3://d/",
        "metrics": {"f1": 0.9},
        "confusion_matrix": None,
        "production_run": None,
        "production_metrics": None,
        "verdict": VERDICT_PASS,
        "package_arn": "arn",
        "deployment_dag_id": "mlops_deployment",
    }
