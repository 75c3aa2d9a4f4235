"""The trigger Lambda's drift path: an SNS delivery of a model's drift alarm.

S3 is moto's (the summary is read with the handler's own boto3 call). Airflow is ``FakeDagRuns``, a
stateful stand-in for the dagRuns endpoints that encodes what Airflow's REST API documents and the
handler relies on: POST with an existing ``dag_run_id`` answers 409; the list endpoint filters by
``updated_at_gte`` and pages with ``limit``/``offset``. The whole path (alarm, topic, alias, the
deployed policies, Airflow behind local MWAA) runs in tests/e2e/test_drift_loop.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from dag_trigger_fn import handler as handler_module
from dag_trigger_fn.airflow import AirflowError, RestResponse
from dag_trigger_fn.drift import drift_run_id
from dag_trigger_fn.handler import DagTriggerService
from moto import mock_aws
from trigger_test_support import FakeContext

from mlops_core import names
from mlops_core.drift import DriftCheckSummary, FeatureDrift

BUCKET = "mlops-dev-artifacts-111111111111-eu-west-1"
PLATFORM_ENV = "dev"
PROJECT, MODEL = "fraud", "scorer"
TOPIC = "arn:aws:sns:eu-west-1:111111111111:mlops-dev-fraud-drift"


class FakeDagRuns:
    def __init__(self) -> None:
        self.runs: dict[str, dict] = {}
        self.calls: list[tuple[str, str]] = []
        self.remaining_seconds = lambda: 30.0

    def call(self, method, path, body=None, *, query=None):
        self.calls.append((method, path))
        prefix = f"/dags/{names.DAG_TRAINING}/dagRuns"
        if method == "POST" and path == prefix:
            if body["dag_run_id"] in self.runs:
                raise AirflowError(409, "conflict", "Airflow: DAGRun already exists", 409)
            now = datetime.now(UTC).isoformat()
            run = {**body, "dag_id": names.DAG_TRAINING, "state": "queued", "updated_at": now}
            self.runs[body["dag_run_id"]] = run
            return RestResponse(200, run)
        if method == "GET" and path == prefix:
            since = datetime.fromisoformat(query["updated_at_gte"])
            found = [r for r in self.runs.values() if datetime.fromisoformat(r["updated_at"]) >= since]
            offset, limit = int(query["offset"]), int(query["limit"])
            return RestResponse(200, {"dag_runs": found[offset : offset + limit], "total_entries": len(found)})
        if method == "GET" and path.startswith(prefix + "/"):
            run = self.runs.get(path.rsplit("/", 1)[1])
            if run is None:
                raise AirflowError(404, "not_found", "Airflow: not found", 404)
            return RestResponse(200, run)
        raise AssertionError(f"unexpected call {method} {path}")

    def add_past_run(self, run_id: str, conf: dict, hours_ago: float) -> None:
        when = (datetime.now(UTC) - timedelta(hours=hours_ago)).isoformat()
        self.runs[run_id] = {"dag_run_id": run_id, "conf": conf, "logical_date": when, "updated_at": when}


class _Mwaa:
    def get_environment(self, Name):  # noqa: N803 - boto3's parameter name
        return {"Environment": {"WebserverUrl": "abc.airflow.eu-west-1.on.aws", "AirflowVersion": "3.3.1"}}


def summary(**overrides) -> DriftCheckSummary:
    now = datetime.now(UTC)
    fields = {
        "project": PROJECT,
        "model": MODEL,
        "endpoint_name": names.endpoint_name(PROJECT, MODEL),
        "schedule_name": names.monitoring_schedule_name(PROJECT, MODEL),
        "check_name": "fraud-scorer-drift-20261205080000",
        "checked_at": now,
        "window_start": now - timedelta(hours=1),
        "window_end": now,
        "records": 500,
        "model_version": "1.4.0+r0",
        "image_tag": "1.4.0",
        "drifted": [
            FeatureDrift(
                name="amount",
                distance=0.4,
                threshold=0.1,
                baseline={"mean": 10.0, "stddev": 2.0},
                current={"mean": 25.0, "stddev": 2.5},
            )
        ],
        "report_uri": "s3://b/k/",
        "violations_uri": "s3://b/k/constraint_violations.json",
        "cool_down_hours": 24,
    }
    fields.update(overrides)
    return DriftCheckSummary(**fields)


def alarm_event(state="ALARM", project=PROJECT, model=MODEL, environment=PLATFORM_ENV, alarm_name=None):
    message = {
        "AlarmName": alarm_name or names.drift_alarm_name(environment, project, model),
        "AlarmArn": "arn:aws:cloudwatch:eu-west-1:111111111111:alarm:x",
        "NewStateValue": state,
        "OldStateValue": "OK",
        "Trigger": {
            "MetricName": names.DRIFTED_FEATURES_METRIC,
            "Namespace": names.MODEL_METRICS_NAMESPACE,
            "Dimensions": [
                {"name": k, "value": v} for k, v in names.model_metric_dimensions(environment, project, model).items()
            ],
        },
    }
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "Sns": {"Type": "Notification", "TopicArn": TOPIC, "Message": json.dumps(message)},
            }
        ]
    }


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-1")
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        yield client


@pytest.fixture
def airflow():
    return FakeDagRuns()


@pytest.fixture
def service(s3, airflow):
    return DagTriggerService(
        airflow, _Mwaa(), "mlops-dev", s3_client=s3, artifact_bucket=BUCKET, platform_environment=PLATFORM_ENV
    )


def write_summary(s3, document: DriftCheckSummary, project=PROJECT, model=MODEL) -> None:
    key = names.drift_summary_uri(BUCKET, project, model).removeprefix(f"s3://{BUCKET}/")
    s3.put_object(Bucket=BUCKET, Key=key, Body=document.model_dump_json().encode())


def test_a_drift_alarm_starts_a_retraining_of_the_serving_image_with_the_drifted_features(service, s3, airflow):
    write_summary(s3, summary())
    result = service.handle_alarm(alarm_event(), project=PROJECT)
    assert result["action"] == "started" and result["status"] == 201
    run_id = drift_run_id(PROJECT, MODEL, "fraud-scorer-drift-20261205080000")
    assert result["dag_run_id"] == run_id and len(f"/dags/{names.DAG_TRAINING}/dagRuns/{run_id}") <= 64
    assert airflow.runs[run_id]["conf"] == {
        "project": PROJECT,
        "model": MODEL,
        "image_tag": "1.4.0",
        "retraining": True,
        "reason": "drift",
        "drifted_features": ["amount"],
        "drift_check": "fraud-scorer-drift-20261205080000",
    }


def test_a_second_delivery_of_the_same_alarm_starts_no_second_run(service, s3, airflow):
    write_summary(s3, summary())
    first = service.handle_alarm(alarm_event(), project=PROJECT)
    # SNS delivers at least once: the same notification again (and once more racing the cool-down
    # check: the run id is the check's, so Airflow itself refuses a second run).
    again = service.handle_alarm(alarm_event(), project=PROJECT)
    assert first["created"] is True and again["created"] is False and again["action"] == "already_started"
    assert len(airflow.runs) == 1


def test_another_check_within_the_cool_down_starts_nothing(service, s3, airflow):
    airflow.add_past_run("drift-earlier", {"project": PROJECT, "model": MODEL, "reason": "drift"}, hours_ago=23)
    write_summary(s3, summary(check_name="fraud-scorer-drift-20261205090000"))
    result = service.handle_alarm(alarm_event(), project=PROJECT)
    assert result["action"] == "cool_down" and "drift-earlier" in result["reason"]
    assert set(airflow.runs) == {"drift-earlier"}


@pytest.mark.parametrize(
    ("conf", "hours_ago"),
    [
        ({"project": PROJECT, "model": MODEL, "reason": "drift"}, 25),  # outside the cool-down
        ({"project": PROJECT, "model": MODEL}, 1),  # a CI or scheduled run is no drift retraining
        ({"project": PROJECT, "model": "other", "reason": "drift"}, 1),  # another model's
    ],
)
def test_only_a_drift_retraining_of_this_model_within_the_cool_down_holds_one_back(
    service, s3, airflow, conf, hours_ago
):
    airflow.add_past_run("older", conf, hours_ago=hours_ago)
    write_summary(s3, summary())
    assert service.handle_alarm(alarm_event(), project=PROJECT)["action"] == "started"


@pytest.mark.parametrize(
    "event",
    [
        alarm_event(project="payments"),  # another project's alarm
        alarm_event(environment="prod"),  # another environment's
        alarm_event(alarm_name="mlops-dev-fraud-scorer-5xx-errors"),  # not the drift alarm
    ],
)
def test_an_alarm_of_another_project_is_refused_and_logged(service, s3, airflow, event, caplog):
    write_summary(s3, summary())
    result = service.handle_alarm(event, project=PROJECT)
    assert result["ok"] is False and result["status"] == 403
    assert airflow.runs == {} and airflow.calls == []
    assert "alarm refused" in caplog.text


@pytest.mark.parametrize("state", ["OK", "INSUFFICIENT_DATA"])
def test_only_the_alarm_state_acts(service, s3, airflow, state):
    write_summary(s3, summary())
    result = service.handle_alarm(alarm_event(state=state), project=PROJECT)
    assert result["action"] == "ignored" and airflow.calls == []


@pytest.mark.parametrize(
    ("document", "why"),
    [(summary(conclusive=False, drifted=[]), "inconclusive check"), (summary(drifted=[]), "no drifted feature")],
)
def test_an_inconclusive_or_clean_check_starts_nothing(service, s3, airflow, document, why, caplog):
    write_summary(s3, document)
    result = service.handle_alarm(alarm_event(), project=PROJECT)
    assert result["action"] == "ignored" and result["reason"] == why and airflow.calls == []
    assert why in caplog.text


def test_a_missing_summary_starts_nothing(service, airflow):
    result = service.handle_alarm(alarm_event(), project=PROJECT)
    assert result["error"]["code"] == "summary_not_found" and airflow.calls == []


def test_an_sns_message_that_is_no_alarm_is_refused(service, airflow):
    event = alarm_event()
    event["Records"][0]["Sns"]["Message"] = "hello"
    assert service.handle_alarm(event, project=PROJECT)["error"]["code"] == "not_an_alarm"


def test_the_entry_point_routes_sns_to_the_drift_path_and_retries_when_airflow_is_unavailable(
    monkeypatch, service, s3, airflow
):
    write_summary(s3, summary())
    monkeypatch.setattr(handler_module, "_service", service)

    def unavailable(*args, **kwargs):
        raise AirflowError(503, "upstream_unavailable", "MWAA is unavailable")

    monkeypatch.setattr(airflow, "call", unavailable)
    # Raised, not answered: Lambda retries an asynchronous (SNS) invocation that raised.
    with pytest.raises(handler_module.RetryableDelivery):
        handler_module.handler(alarm_event(), FakeContext())


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"reason": "drift"}, "reason 'drift' needs drifted_features (at least one) and drift_check"),
        ({"reason": "drift", "drifted_features": ["a"], "drift_check": "c"}, "set retraining to true"),
        ({"drift_check": "c"}, "drifted_features and drift_check go with reason 'drift' only"),
        ({"reason": "bored"}, "conf.reason: Input should be 'drift'"),
        ({"reason": "drift", "retraining": True, "drifted_features": [], "drift_check": "c"}, "conf.drifted_features"),
        ({"reason": "drift", "retraining": True, "drifted_features": ["a"], "drift_check": "a b"}, "conf.drift_check"),
    ],
)
def test_a_trigger_with_inconsistent_drift_fields_is_refused_naming_them(extra, message):
    from dag_trigger_fn.validation import RequestError, parse_request

    event = {
        "action": "trigger",
        "dag_id": names.DAG_TRAINING,
        "pipeline_id": 1,
        "job_id": 2,
        "conf": {"project": PROJECT, "model": MODEL, **extra},
    }
    with pytest.raises(RequestError) as refused:
        parse_request(event)
    assert refused.value.status == 400 and message in refused.value.message


def test_an_alarm_sent_to_the_function_url_is_no_alarm(monkeypatch, service, s3, airflow):
    from test_handler import url_event

    write_summary(s3, summary())
    monkeypatch.setenv("MLOPS_ENVIRONMENT", PLATFORM_ENV)
    monkeypatch.setattr(handler_module, "_service", service)
    response = handler_module.handler(url_event(alarm_event()), FakeContext())
    assert response["statusCode"] == 400 and airflow.calls == []
