"""The demo's story as plain steps over a started LocalPlatform, shared by ``make demo``, the
end-to-end test and the benchmark. Each step returns what it observed; nothing here prints."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from local_mode.platform import LocalPlatform, RunOutcome
from mlops_core import names

SUCCESS_COMMIT = "feat: process-event classifier from the model template"
FAILING_COMMIT = "feat: new features (training breaks on purpose)"


@dataclass
class Stage:
    name: str
    seconds: float
    detail: str = ""


@dataclass
class TrainingResult:
    version: dict[str, str]  # mlops version next's dotenv (IMAGE_TAG, PREVIOUS_VERSION, ...)
    trigger: dict[str, Any]  # the trigger Lambda's response
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
    trigger: dict[str, Any]
    run: RunOutcome
    endpoint: dict[str, Any] | None
    answer: dict[str, Any] | None
    invoke_seconds: float
    sns: list[dict[str, str]]
    slack: list[dict[str, Any]]


@dataclass
class Journal:
    stages: list[Stage] = field(default_factory=list)

    def add(self, name: str, started: float, detail: str = "") -> Stage:
        stage = Stage(name, time.monotonic() - started, detail)
        self.stages.append(stage)
        return stage


def _notifications(platform: LocalPlatform, slack_before: int, expect: int = 1, timeout: float = 20):
    """SNS (through the SQS subscription) and Slack payloads since ``slack_before``."""
    deadline = time.monotonic() + timeout
    sns: list[dict[str, str]] = []
    while True:
        sns += platform.sns_messages(wait_seconds=1)
        slack = platform.slack.since(slack_before)
        if (len(sns) >= expect and len(slack) >= expect) or time.monotonic() > deadline:
            return sns, slack


def train(
    platform: LocalPlatform,
    journal: Journal,
    *,
    label: str,
    commit: str | None = SUCCESS_COMMIT,
    retraining: bool = False,
    hyperparameters: dict[str, Any] | None = None,
    on_tasks=None,
    notifications: int = 1,
) -> TrainingResult:
    """CI's version + publish stages (unless retraining), then Training & Evaluation through the
    trigger Lambda (or, for retraining, the Retraining DAG) until the run finishes."""
    config = platform.config
    slack_before = platform.slack.count()
    version: dict[str, str] = {}
    if retraining:
        started = time.monotonic()
        run_id = platform.start_retraining()
        trigger = {"dag_run_id": run_id, "via": names.DAG_RETRAINING}
        journal.add(f"{label}: Retraining DAG starts training", started, run_id)
    else:
        started = time.monotonic()
        version = platform.version_next(commit)
        journal.add(f"{label}: mlops version next + publish", started, version["output"])
        conf = {
            "project": config["project"],
            "model": config["model"],
            "image_tag": version["IMAGE_TAG"],
            "source_commit": "0123abc",
        }
        if hyperparameters:
            conf["hyperparameters"] = hyperparameters
        started = time.monotonic()
        trigger = platform.trigger(names.DAG_TRAINING, conf)
        run_id = trigger["dag_run_id"]
    run = platform.wait_run(names.DAG_TRAINING, run_id, on_tasks=on_tasks)
    package = platform.package_of_run(run_id)
    journal.add(
        f"{label}: Training & Evaluation DAG",
        started,
        f"{run.state}, {(package or {}).get('CustomerMetadataProperties', {}).get('model_version', 'no candidate')}",
    )
    sns, slack = _notifications(platform, slack_before, expect=notifications)
    return TrainingResult(version, trigger, run, package, sns, slack)


def deploy(
    platform: LocalPlatform, journal: Journal, *, label: str, model_version: str, on_tasks=None
) -> DeploymentResult:
    """The approval (the manual deploy job in GitLab) starts the Deployment DAG through the trigger
    Lambda; then one real invocation of the endpoint."""
    config = platform.config
    slack_before = platform.slack.count()
    started = time.monotonic()
    trigger = platform.trigger(
        names.DAG_DEPLOYMENT, {"project": config["project"], "model": config["model"], "model_version": model_version}
    )
    run = platform.wait_run(names.DAG_DEPLOYMENT, trigger["dag_run_id"], on_tasks=on_tasks)
    endpoint = platform.endpoint()
    journal.add(f"{label}: Deployment DAG", started, f"{run.state}, endpoint {(endpoint or {}).get('EndpointStatus')}")
    answer, invoke_seconds = (None, 0.0)
    if run.state == "success":
        answer, invoke_seconds = platform.invoke_endpoint()
    sns, slack = _notifications(platform, slack_before)
    return DeploymentResult(trigger, run, endpoint, answer, invoke_seconds, sns, slack)


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
    platform: LocalPlatform, journal: Journal, *, label: str = "broken commit", on_tasks=None
) -> FailureResult:
    """A commit whose training fails (the template's ``fail_training`` hyperparameter): the failure
    is notified, no candidate is registered, and the endpoint (if any) keeps its version."""
    endpoint_before, packages_before = platform.endpoint(), len(platform.packages())
    result = train(
        platform,
        journal,
        label=label,
        commit=FAILING_COMMIT,
        hyperparameters={"fail_training": True},
        on_tasks=on_tasks,
        notifications=1,  # the failed task's notice (one per channel: no second, run-level one)
    )
    return FailureResult(result, endpoint_before, platform.endpoint(), packages_before, len(platform.packages()))
