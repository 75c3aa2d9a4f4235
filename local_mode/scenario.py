"""The demo's story as plain steps over a started LocalPlatform, shared by ``make demo``, the
end-to-end tests and the benchmark. Each step returns what it observed; nothing here prints."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from local_mode.actors import Actor
from local_mode.models import LocalModel
from local_mode.platform import LocalPlatform, RunOutcome
from mlops_core import names

SUCCESS_COMMIT = "feat: first model from the model template"
FAILING_COMMIT = "feat: new features (training breaks on purpose)"


@dataclass
class Stage:
    name: str
    seconds: float
    detail: str = ""


@dataclass
class TrainingResult:
    model: LocalModel
    version: dict[str, str]  # mlops image release's dotenv (IMAGE_TAG, PREVIOUS_VERSION, ...)
    trigger: dict[str, Any]  # the trigger Lambda's response, or how the Retraining DAG started it
    run: RunOutcome
    package: dict[str, Any] | None
    sns: list[dict[str, str]]
    slack: list[dict[str, Any]]

    @property
    def model_version(self) -> str | None:
        return (self.package or {}).get("CustomerMetadataProperties", {}).get("model_version")

    @property
    def metrics(self) -> dict[str, float]:
        meta = (self.package or {}).get("CustomerMetadataProperties", {})
        return {k.removeprefix("metric."): float(v) for k, v in meta.items() if k.startswith("metric.")}


@dataclass
class DeploymentResult:
    model: LocalModel
    trigger: dict[str, Any]
    run: RunOutcome
    endpoint: dict[str, Any] | None
    answer: dict[str, Any] | None
    invoke_seconds: float
    sns: list[dict[str, str]]
    slack: list[dict[str, Any]]
    traffic: Traffic | None = None
    trial_outcome: str | None = None  # the package's trial_outcome (a shadow or A/B trial ran)


@dataclass
class Traffic:
    """Requests sent to an endpoint while a deployment ran, as its callers would send them."""

    sent: int = 0
    refused: list[str] = field(default_factory=list)


@contextmanager
def live_traffic(platform: LocalPlatform, model: LocalModel, *, pause: float = 0.05) -> Iterator[Traffic]:
    """Requests of the model's sample records to its endpoint every ``pause`` seconds while the
    block runs, each with its own InferenceId (recorded with its captured answers, which is how a
    shadow trial pairs production's answer with the candidate's)."""
    runtime = platform.client(Actor.OPERATOR, "sagemaker-runtime")
    records = model.source.sample_records(200).strip().splitlines()
    traffic, stop = Traffic(), threading.Event()

    def send() -> None:
        while not stop.is_set():
            record = records[traffic.sent % len(records)]
            try:
                runtime.invoke_endpoint(
                    EndpointName=model.endpoint_name,
                    ContentType="text/csv",
                    Body=(record + "\n").encode(),
                    InferenceId=f"demo-{traffic.sent}",
                )
            except Exception as error:  # noqa: BLE001 - counted: production must answer every request
                traffic.refused.append(f"{type(error).__name__}: {error}"[:300])
            traffic.sent += 1
            stop.wait(pause)

    thread = threading.Thread(target=send, name="live-traffic", daemon=True)
    thread.start()
    try:
        yield traffic
    finally:
        stop.set()
        thread.join(timeout=30)


@dataclass
class Journal:
    stages: list[Stage] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def add(self, name: str, started: float, detail: str = "") -> Stage:
        stage = Stage(name, time.monotonic() - started, detail)
        self.stages.append(stage)
        return stage

    @property
    def total_seconds(self) -> float:
        return time.monotonic() - self.started


def _version_of(package: dict[str, Any] | None) -> str:
    return (package or {}).get("CustomerMetadataProperties", {}).get("model_version", "no candidate")


def train(
    platform: LocalPlatform,
    model: LocalModel,
    journal: Journal,
    *,
    label: str,
    commit: str = SUCCESS_COMMIT,
    hyperparameters: dict[str, Any] | None = None,
    on_tasks=None,
    notifications: int = 1,
) -> TrainingResult:
    """CI's version and publish stages, then Training & Evaluation through the trigger Lambda
    until the run finishes."""
    mark = platform.mark()
    started = time.monotonic()
    version = platform.version_next(model, commit)
    journal.add(f"{label}: mlops version bump + image release", started, version["output"])
    conf = {
        "project": model.project,
        "model": model.model,
        "image_tag": version["IMAGE_TAG"],
        "source_commit": "0123abc",
    }
    if hyperparameters:
        conf["hyperparameters"] = hyperparameters
    started = time.monotonic()
    trigger = platform.trigger(names.DAG_TRAINING, conf)
    run = platform.wait_run(names.DAG_TRAINING, trigger["dag_run_id"], on_tasks=on_tasks)
    package = platform.package_of_run(model, run.run_id)
    journal.add(f"{label}: Training & Evaluation DAG", started, f"{run.state}, {_version_of(package)}")
    sns, slack = platform.notifications(mark, model, expect=notifications)
    return TrainingResult(model, version, trigger, run, package, sns, slack)


def retrain(
    platform: LocalPlatform, models: list[LocalModel], journal: Journal, *, label: str = "retraining", watch=None
) -> dict[str, TrainingResult]:
    """One manual run of the Retraining DAG (``ignore_interval``), as after new data arrived: it
    retrains every serving model with retraining enabled; then each training run to its end.
    ``watch(model)`` gives the ``on_tasks`` callback following that model's run."""
    mark = platform.mark()
    known = platform.training_run_ids()
    started = time.monotonic()
    retraining_run = platform.start_retraining()
    planned = platform.wait_run(names.DAG_RETRAINING, retraining_run)
    runs = platform.training_runs_since(known)
    journal.add(
        f"{label}: Retraining DAG",
        started,
        f"{planned.state}, started Training & Evaluation for {', '.join(sorted(runs)) or 'no model'}",
    )
    results = {}
    started = time.monotonic()
    for model in models:
        run_id = runs.get(model.key)
        if run_id is None:
            continue
        run = platform.wait_run(names.DAG_TRAINING, run_id, on_tasks=watch(model) if watch else None)
        package = platform.package_of_run(model, run_id)
        name = f"{label}: Training & Evaluation DAG" + (f" ({model.key})" if len(models) > 1 else "")
        journal.add(name, started, f"{run.state}, {_version_of(package)} (image {run.conf.get('image_tag')})")
        sns, slack = platform.notifications(mark, model)
        trigger = {"dag_run_id": run_id, "via": names.DAG_RETRAINING, "retraining_run_id": retraining_run}
        results[model.key] = TrainingResult(model, {}, trigger, run, package, sns, slack)
    return results


def deploy(
    platform: LocalPlatform,
    model: LocalModel,
    journal: Journal,
    *,
    label: str,
    model_version: str,
    on_tasks=None,
    traffic: bool = False,
) -> DeploymentResult:
    """The approval (the manual deploy job in GitLab) starts the Deployment DAG through the trigger
    Lambda; then one real invocation of the endpoint. With ``traffic``, requests arrive while the
    DAG runs (what a shadow or A/B trial judges the candidate on)."""
    mark = platform.mark()
    started = time.monotonic()
    with live_traffic(platform, model) if traffic else contextlib.nullcontext() as sent:
        trigger = platform.trigger(
            names.DAG_DEPLOYMENT, {"project": model.project, "model": model.model, "model_version": model_version}
        )
        run = platform.wait_run(names.DAG_DEPLOYMENT, trigger["dag_run_id"], on_tasks=on_tasks)
    endpoint = platform.endpoint(model)
    outcome = trial_outcome(platform, model, model_version)
    detail = f"{run.state}, endpoint {(endpoint or {}).get('EndpointStatus')}"
    if outcome:
        detail += f"; trial {outcome.split(':', 1)[0]}" + (f" ({sent.sent} requests sent)" if sent else "")
    journal.add(f"{label}: Deployment DAG", started, detail)
    answer, invoke_seconds = (None, 0.0)
    if run.state == "success" and (endpoint or {}).get("EndpointStatus") == "InService":
        answer, invoke_seconds = platform.invoke_endpoint(model)
    # A trial sends its own notice before the deployment's.
    sns, slack = platform.notifications(mark, model, expect=2 if outcome else 1)
    return DeploymentResult(model, trigger, run, endpoint, answer, invoke_seconds, sns, slack, sent, outcome)


def trial_outcome(platform: LocalPlatform, model: LocalModel, model_version: str) -> str | None:
    """What the registry keeps of the version's shadow or A/B trial (None: it had none)."""
    for package in platform.packages(model):
        meta = package.get("CustomerMetadataProperties", {})
        if meta.get("model_version") == model_version:
            return meta.get("trial_outcome")
    return None


@dataclass
class FailureResult:
    training: TrainingResult
    endpoint_before: dict[str, Any] | None
    endpoint_after: dict[str, Any] | None
    packages_before: int
    packages_after: int

    @property
    def nothing_deployed(self) -> bool:
        before = (self.endpoint_before or {}).get("EndpointConfigName")
        after = (self.endpoint_after or {}).get("EndpointConfigName")
        return before == after and self.packages_after == self.packages_before


def failing_training(
    platform: LocalPlatform, model: LocalModel, journal: Journal, *, label: str = "broken commit", on_tasks=None
) -> FailureResult:
    """A commit whose training fails (the template's ``fail_training`` hyperparameter): the failure
    is notified, no candidate is registered, and the endpoint (if any) keeps its version."""
    endpoint_before, packages_before = platform.endpoint(model), len(platform.packages(model))
    result = train(
        platform,
        model,
        journal,
        label=label,
        commit=FAILING_COMMIT,
        hyperparameters={"fail_training": True},
        on_tasks=on_tasks,
        notifications=1,  # the failed task's notice (one per channel: no second, run-level one)
    )
    return FailureResult(
        result, endpoint_before, platform.endpoint(model), packages_before, len(platform.packages(model))
    )


# Shifted traffic: every numeric feature scaled and offset, far outside what the model was trained on.
DRIFT_SCALE, DRIFT_OFFSET = 3.0, 10.0


def shifted(records: list[str]) -> list[str]:
    """The records with every numeric value ``v`` sent as ``v * DRIFT_SCALE + DRIFT_OFFSET``."""

    def shift(value: str) -> str:
        try:
            return f"{float(value) * DRIFT_SCALE + DRIFT_OFFSET:g}"
        except ValueError:
            return value

    return [",".join(shift(value) for value in record.split(",")) for record in records]


def send_records(platform: LocalPlatform, model: LocalModel, records: list[str]) -> int:
    """One InvokeEndpoint per record, as the model's callers send them; returns how many answered."""
    from local_mode.actors import Actor

    runtime = platform.client(Actor.OPERATOR, "sagemaker-runtime")
    answered = 0
    for record in records:
        runtime.invoke_endpoint(EndpointName=model.endpoint_name, ContentType="text/csv", Body=(record + "\n").encode())
        answered += 1
    return answered


@dataclass
class DriftResult:
    model: LocalModel
    shifted: bool
    requests: int
    check: RunOutcome
    summary: dict[str, Any] | None
    alarm: dict[str, Any] | None
    retraining: TrainingResult | None
    # What the drift alarm did meanwhile (local AWS's AlarmAction events: Published or Failed).
    alarm_actions: list[dict[str, Any]]
    # From the first request of the traffic to the drift retraining's run starting (Airflow's
    # start_date); None when none started.
    loop_seconds: float | None

    @property
    def drifted(self) -> list[dict[str, Any]]:
        return (self.summary or {}).get("drifted") or []


def drift(
    platform: LocalPlatform,
    model: LocalModel,
    journal: Journal,
    *,
    label: str,
    shift: bool,
    requests: int = 200,
    on_check=None,
    on_retraining=None,
    quiet_seconds: float = 10,
) -> DriftResult:
    """Traffic to the serving endpoint (``shift``: far from the training data), then the Drift Check
    DAG on it. Shifted traffic drifts: the check publishes DriftedFeatures, the model's drift alarm
    fires, SNS invokes the project's trigger Lambda alias, which starts Training & Evaluation with
    reason drift; this waits for that run and its notice. Unshifted traffic must start nothing: this
    waits ``quiet_seconds`` after the check to see that nothing started."""
    from datetime import UTC, datetime

    from local_mode.airflow import CAPTURE_SETTLE_SECONDS

    mark = platform.mark()
    known = platform.training_run_ids()
    events_before = len(platform.aws.events())
    records = model.source.sample_records(requests).strip().splitlines()
    records = (records * (requests // len(records) + 1))[:requests]
    first_request = datetime.now(UTC)
    started = time.monotonic()
    sent = send_records(platform, model, shifted(records) if shift else records)
    kind = "shifted" if shift else "unshifted"
    journal.add(f"{label}: {sent} {kind} requests", started)
    # The check's window ends CAPTURE_SETTLE_SECONDS behind the present: wait until it holds them all.
    time.sleep(CAPTURE_SETTLE_SECONDS + 1)
    started = time.monotonic()
    run_id = platform.start_drift_check(model)
    check = platform.wait_run(names.DAG_DRIFT_CHECK, run_id, on_tasks=on_check)
    summary = platform.drift_summary(model)
    drifted = [feature["name"] for feature in (summary or {}).get("drifted") or []]
    journal.add(
        f"{label}: Drift Check DAG",
        started,
        f"{check.state}, {(summary or {}).get('records', 0)} records, drifted: {', '.join(drifted) or 'none'}",
    )
    alarm_name = names.drift_alarm_name(model.config["environment"], model.project, model.model)
    retraining, loop_seconds = None, None
    started = time.monotonic()
    deadline = started + (90 if shift else quiet_seconds)
    run_id = None
    while time.monotonic() < deadline and run_id is None:
        new = platform.training_runs_since(known)
        run_id = new.get(model.key)
        if run_id is None:
            time.sleep(1)
    if run_id is not None:
        run = platform.wait_run(names.DAG_TRAINING, run_id, on_tasks=on_retraining)
        package = platform.package_of_run(model, run_id)
        run_started = platform.airflow.dag_run(names.DAG_TRAINING, run_id).get("start_date")
        if run_started:
            loop_seconds = (datetime.fromisoformat(run_started.replace("Z", "+00:00")) - first_request).total_seconds()
        journal.add(
            f"{label}: drift alarm -> trigger Lambda -> Training & Evaluation",
            started,
            f"{run.state}, {_version_of(package)} (reason {run.conf.get('reason')})",
        )
        sns, slack = platform.notifications(mark, model)
        trigger = {"dag_run_id": run_id, "via": "drift alarm", "conf": run.conf}
        retraining = TrainingResult(model, {}, trigger, run, package, sns, slack)
    else:
        state = (platform.alarm(alarm_name) or {}).get("StateValue")
        journal.add(f"{label}: no retraining", started, f"drift alarm {state}")
    actions = [
        event
        for event in platform.aws.events()[events_before:]
        if event["kind"] == "AlarmAction" and event["name"] == alarm_name
    ]
    alarm = platform.alarm(alarm_name)
    return DriftResult(model, shift, sent, check, summary, alarm, retraining, actions, loop_seconds)
