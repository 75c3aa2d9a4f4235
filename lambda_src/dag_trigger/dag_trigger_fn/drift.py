"""The drift alarm's path: a model's drift alarm (``DriftedFeatures >= 1``) notifies its project's
drift topic, which invokes the project's alias with the CloudWatch alarm notification in an SNS
event; this module decides whether that starts a drift retraining.

- Only a transition to ``ALARM`` acts (the topic gets no OK actions, but a notification is checked,
  not trusted).
- Project and model come from the alarm's metric dimensions (``Trigger.Dimensions``:
  ``names.model_metric_dimensions``) and must be this alias's project and environment: a
  notification for another project is refused, whatever the topic policy let through.
- The check's own summary (``names.drift_summary_uri``) says what drifted; an inconclusive check or
  one that found nothing starts nothing.
- Cool-down: a drift retraining of the model that started within ``summary.cool_down_hours`` keeps
  another from starting (asked from Airflow, which knows every run, not from a local record).
- The run id is derived from the check (``drift_run_id``): SNS delivers at least once, and a second
  delivery of the same alarm finds the run already there (409) instead of starting another.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlops_core import names
from mlops_core.drift import DriftCheckSummary

ALARM_STATE = "ALARM"
# InvokeRestApi's 64-character Path limit: "/dags/mlops_training_evaluation/dagRuns/" is 40.
_RUN_ID_DIGEST_CHARS = 16
# Airflow's page size limit (both versions' default maximum is 100).
_PAGE = 100
_MAX_PAGES = 20


class NotAnAlarm(Exception):
    """The SNS message is not a CloudWatch alarm notification the platform understands."""


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Dimension(_Loose):
    name: str
    value: str


class _Trigger(_Loose):
    MetricName: str
    Namespace: str
    Dimensions: list[_Dimension] = Field(default_factory=list)


class AlarmNotification(_Loose):
    """The fields of CloudWatch's alarm notification (the JSON SNS carries as ``Message``) used here."""

    AlarmName: str
    AlarmArn: str | None = None
    NewStateValue: str
    Trigger: _Trigger

    @property
    def dimensions(self) -> dict[str, str]:
        return {d.name: d.value for d in self.Trigger.Dimensions}


def is_sns_event(event: Any) -> bool:
    records = event.get("Records") if isinstance(event, dict) else None
    return bool(isinstance(records, list) and records and all(isinstance(r, dict) and "Sns" in r for r in records))


def alarm_notifications(event: dict[str, Any]) -> list[tuple[str, AlarmNotification]]:
    """(topic ARN, notification) of every record (SNS sends one record per invocation)."""
    found = []
    for record in event["Records"]:
        sns = record.get("Sns") or {}
        try:
            found.append((str(sns.get("TopicArn", "")), AlarmNotification.model_validate(json.loads(sns["Message"]))))
        except (KeyError, TypeError, ValueError, ValidationError):
            raise NotAnAlarm("the SNS message is not a CloudWatch alarm notification") from None
    return found


def drift_run_id(project: str, model: str, check_name: str) -> str:
    """The Training & Evaluation run id a drift check starts: the same check, the same run."""
    digest = hashlib.sha256(f"{project}/{model}/{check_name}".encode()).hexdigest()
    return f"drift-{digest[:_RUN_ID_DIGEST_CHARS]}"


def drift_conf(summary: DriftCheckSummary) -> dict[str, Any]:
    """The run's conf: a retraining of the serving image, with why and what drifted."""
    return {
        "project": summary.project,
        "model": summary.model,
        "image_tag": summary.image_tag,
        "retraining": True,
        "reason": "drift",
        "drifted_features": summary.drifted_features,
        "drift_check": summary.check_name,
    }


def read_summary(s3: Any, bucket: str, project: str, model: str) -> DriftCheckSummary:
    uri = names.drift_summary_uri(bucket, project, model)
    key = uri.removeprefix(f"s3://{bucket}/")
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return DriftCheckSummary.model_validate_json(body)


def _run_time(run: dict[str, Any]) -> datetime | None:
    # Airflow 3: logical_date / run_after; Airflow 2: execution_date. The trigger sets the logical
    # date to the moment it asked for the run, so a queued run counts before it starts.
    for key in ("logical_date", "execution_date", "run_after", "start_date"):
        value = run.get(key)
        if value:
            return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return None


def recent_drift_run(
    api: Any, project: str, model: str, cool_down_hours: int, now: datetime | None = None
) -> dict[str, Any] | None:
    """A Training & Evaluation run of this model with reason "drift" asked for within the cool-down.

    ``updated_at_gte`` (both Airflow 2 and 3 list endpoints) narrows the listing to runs touched
    since the window opened, a superset of the runs created since; conf is filtered here."""
    now = now or datetime.now(UTC)
    since = now - timedelta(hours=cool_down_hours)
    path = f"/dags/{names.DAG_TRAINING}/dagRuns"
    for page in range(_MAX_PAGES):
        query = {"updated_at_gte": since.isoformat(), "limit": str(_PAGE), "offset": str(page * _PAGE)}
        body = api.call("GET", path, query=query).body
        runs = body.get("dag_runs") or []
        for run in runs:
            conf = run.get("conf") or {}
            when = _run_time(run)
            if (
                conf.get("project") == project
                and conf.get("model") == model
                and conf.get("reason") == "drift"
                and when is not None
                and when >= since
            ):
                return run
        if len(runs) < _PAGE:
            return None
    # More runs in the window than we read: assume the cool-down holds rather than risk a second run.
    return {"dag_run_id": None, "note": f"more than {_PAGE * _MAX_PAGES} runs updated in the cool-down window"}
