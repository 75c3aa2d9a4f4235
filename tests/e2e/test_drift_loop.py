"""The drift loop from the alarm to the retraining, in a local AWS that evaluates the synthesized
policies: the fixture project's drift alarm goes to ALARM -> CloudWatch publishes to the project's
drift topic (topic policy, KMS) -> SNS invokes the project's alias of the trigger Lambda (its
resource policy) -> the real handler runs in local Lambda as its role, reads the check's summary
(S3 + KMS) and asks Airflow (a recorded Airflow behind local MWAA's InvokeRestApi) for the run.

A second alarm within the cool-down starts nothing; a published ``DriftedFeatures`` datapoint moves
the alarm (local CloudWatch evaluates it); another project's alarm or topic cannot reach the alias."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from local_aws import LocalAws
from local_mode.cdk_env import ProvisionReport, SynthesizedEnvironment, provision, synthesize
from mlops_core import names
from mlops_core.drift import DriftCheckSummary, FeatureDrift
from mlops_core.platform_names import PlatformNames

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ci"))
from pipeline_harness import RecordedAirflow  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]
FIXTURE_PROJECTS = Path(__file__).resolve().parents[1] / "stacks" / "fixture_projects"
PROJECT, MODEL = "example-team", "classifier"


@pytest.fixture(scope="module")
def loop() -> Iterator[tuple[LocalAws, SynthesizedEnvironment, ProvisionReport, RecordedAirflow, Any]]:
    synthesized = synthesize("local", projects_dir=FIXTURE_PROJECTS)
    airflow = RecordedAirflow()
    with LocalAws() as aws, pytest.MonkeyPatch.context() as patch:
        for key, value in aws.env.items():
            patch.setenv(key, value)
        aws.update_scenario({"mwaa": {"airflow_url": f"{airflow.url}/api/v2", "auth": "none"}})
        root = boto3.session.Session(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name=aws.region,  # noqa: S106
        )
        report = provision(synthesized, root)
        yield aws, synthesized, report, airflow, root
    airflow.close()


def _summary(check_name: str, model: str = MODEL) -> DriftCheckSummary:
    now = datetime.now(UTC)
    return DriftCheckSummary(
        project=PROJECT,
        model=model,
        endpoint_name=names.endpoint_name(PROJECT, model),
        schedule_name=names.monitoring_schedule_name(PROJECT, model),
        check_name=check_name,
        checked_at=now,
        window_start=now - timedelta(hours=1),
        window_end=now,
        records=500,
        model_version="0.1.0+r0",
        image_tag="0.1.0",
        drifted=[FeatureDrift(name="f0", distance=0.5, threshold=0.1, baseline={"mean": 0.0}, current={"mean": 3.0})],
        report_uri="s3://x/",
        violations_uri="s3://x/constraint_violations.json",
        cool_down_hours=24,
    )


def _write_summary(root, synthesized: SynthesizedEnvironment, check_name: str, model: str = MODEL) -> None:
    bucket = PlatformNames(synthesized.environment, synthesized.account, synthesized.region).artifact_bucket
    key = names.drift_summary_uri(bucket, PROJECT, model).removeprefix(f"s3://{bucket}/")
    # The bucket's default encryption (the platform key) applies, as to the Drift Check DAG's copy.
    body = _summary(check_name, model).model_dump_json().encode()
    root.client("s3").put_object(Bucket=bucket, Key=key, Body=body)


def _fire(root, alarm: str) -> None:
    cloudwatch = root.client("cloudwatch")
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="reset")
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="DriftedFeatures >= 1")


def _deliveries(aws: LocalAws, count: int, timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = [e for e in aws.events() if e["kind"] == "SnsDelivery"]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_the_drift_alarm_starts_one_drift_retraining_per_cool_down_through_the_projects_alias(loop):
    aws, synthesized, report, airflow, root = loop
    alarm = names.drift_alarm_name(synthesized.environment, PROJECT, MODEL)
    _write_summary(root, synthesized, "example-team--classifier-drift-1")
    before = len(_deliveries(aws, 0, timeout=0))

    _fire(root, alarm)
    (published,) = [e for e in aws.events() if e["kind"] == "AlarmAction" and e["name"] == alarm][-1:]
    assert published["status"] == "Published"
    delivered = _deliveries(aws, before + 1)[before:]
    assert [d["status"] for d in delivered] == ["Delivered"], delivered
    assert delivered[0]["name"].endswith(f":function:{report.trigger_function_name}:{PROJECT}")
    (run,) = [r for (dag, _), r in airflow.runs.items() if dag == names.DAG_TRAINING]
    assert run["conf"] == {
        "project": PROJECT,
        "model": MODEL,
        "image_tag": "0.1.0",
        "retraining": True,
        "reason": "drift",
        "drifted_features": ["f0"],
        "drift_check": "example-team--classifier-drift-1",
    }

    # The next check drifts too, within the cool-down: the alarm fires again, nothing starts.
    _write_summary(root, synthesized, "example-team--classifier-drift-2")
    _fire(root, alarm)
    again = _deliveries(aws, before + 2)[before + 1 :]
    assert [d["status"] for d in again] == ["Delivered"] and '"action": "cool_down"' in again[0]["detail"]
    assert len([1 for dag, _ in airflow.runs if dag == names.DAG_TRAINING]) == 1


def test_a_published_drifted_features_count_moves_the_alarm_and_starts_the_retraining(loop):
    """As the Drift Check DAG publishes it: local CloudWatch evaluates the alarm on the new datapoint."""
    aws, synthesized, _, airflow, root = loop
    model = "regressor"
    alarm = names.drift_alarm_name(synthesized.environment, PROJECT, model)
    _write_summary(root, synthesized, "example-team--regressor-drift-1", model)
    before = len(_deliveries(aws, 0, timeout=0))
    dimensions = [
        {"Name": k, "Value": v}
        for k, v in names.model_metric_dimensions(synthesized.environment, PROJECT, model).items()
    ]

    def publish(count: int) -> None:
        datum = {"MetricName": names.DRIFTED_FEATURES_METRIC, "Dimensions": dimensions, "Value": count}
        root.client("cloudwatch").put_metric_data(Namespace=names.MODEL_METRICS_NAMESPACE, MetricData=[datum])

    publish(0)
    assert root.client("cloudwatch").describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["StateValue"] == "OK"
    publish(2)
    assert root.client("cloudwatch").describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["StateValue"] == "ALARM"
    (delivered,) = _deliveries(aws, before + 1)[before:]
    assert delivered["status"] == "Delivered" and '"action": "started"' in delivered["detail"]
    (run,) = [r for (dag, _), r in airflow.runs.items() if r["conf"]["model"] == model]
    assert run["conf"]["reason"] == "drift" and run["conf"]["drift_check"] == "example-team--regressor-drift-1"


def test_another_projects_alarm_or_topic_cannot_reach_the_alias(loop):
    aws, synthesized, report, airflow, root = loop
    platform = PlatformNames(synthesized.environment, synthesized.account, synthesized.region)
    runs = dict(airflow.runs)
    cloudwatch, sns = root.client("cloudwatch"), root.client("sns")

    # Another project's drift alarm aimed at this project's topic: the topic's policy refuses it.
    other_alarm = names.drift_alarm_name(synthesized.environment, "other-team", MODEL)
    cloudwatch.put_metric_alarm(
        AlarmName=other_alarm,
        MetricName=names.DRIFTED_FEATURES_METRIC,
        Namespace=names.MODEL_METRICS_NAMESPACE,
        Dimensions=[
            {"Name": k, "Value": v}
            for k, v in names.model_metric_dimensions(synthesized.environment, "other-team", MODEL).items()
        ],
        Statistic="Maximum",
        Period=3600,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        AlarmActions=[platform.drift_topic_arn(PROJECT)],
    )
    cloudwatch.set_alarm_state(AlarmName=other_alarm, StateValue="ALARM", StateReason="test")
    (action,) = [e for e in aws.events() if e["kind"] == "AlarmAction" and e["name"] == other_alarm]
    assert action["status"] == "Failed" and "cloudwatch.amazonaws.com is not authorized" in action["detail"]

    # Another topic subscribing this project's alias: the alias's resource policy refuses SNS.
    before = len(_deliveries(aws, 0, timeout=0))
    topic = sns.create_topic(Name=platform.drift_topic("other-team"))["TopicArn"]
    alias = f"arn:aws:lambda:{synthesized.region}:{synthesized.account}:function:{report.trigger_function_name}"
    sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=f"{alias}:{PROJECT}")
    sns.publish(TopicArn=topic, Message=json.dumps({"AlarmName": other_alarm, "NewStateValue": "ALARM"}))
    (refused,) = _deliveries(aws, before + 1)[before:]
    assert refused["status"] == "Failed"
    assert "sns.amazonaws.com is not authorized to perform: lambda:InvokeFunction" in refused["detail"]
    assert airflow.runs == runs
