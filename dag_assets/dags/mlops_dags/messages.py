"""What the platform tells people: e-mail text for SNS and Block Kit for Slack.

Pure formatting over plain values (no Airflow, no AWS), so every message is unit-tested. Each
function returns a Notification carrying both renderings of the same facts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

# SNS: Subject <= 100 ASCII characters without line breaks. Slack: header text <= 150, section
# text <= 3000, at most 10 fields per section, each <= 2000.
SNS_SUBJECT_MAX = 100
SLACK_HEADER_MAX = 150
SLACK_TEXT_MAX = 3000
SLACK_FIELDS_MAX = 10


@dataclass(frozen=True)
class Notification:
    subject: str
    text: str
    blocks: list[dict] = field(default_factory=list)

    @property
    def sns_subject(self) -> str:
        ascii_only = self.subject.encode("ascii", "replace").decode().replace("\n", " ")
        return _truncate(ascii_only, SNS_SUBJECT_MAX, ellipsis="...")

    @property
    def slack_text(self) -> str:
        # Shown in push notifications and by clients that cannot render blocks.
        return _truncate(self.subject, SLACK_HEADER_MAX)


def _truncate(text: str, limit: int, ellipsis: str = "…") -> str:
    return text if len(text) <= limit else text[: limit - len(ellipsis)] + ellipsis


def _header(text: str) -> dict:
    return {"type": "header", "text": {"type": "plain_text", "text": _truncate(text, SLACK_HEADER_MAX)}}


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _truncate(text, SLACK_TEXT_MAX)}}


def _fields(pairs: list[tuple[str, str]]) -> list[dict]:
    blocks = []
    for start in range(0, len(pairs), SLACK_FIELDS_MAX):
        chunk = pairs[start : start + SLACK_FIELDS_MAX]
        blocks.append(
            {
                "type": "section",
                "fields": [{"type": "mrkdwn", "text": _truncate(f"*{k}*\n{v}", 2000)} for k, v in chunk],
            }
        )
    return blocks


def _context(text: str) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _truncate(text, SLACK_TEXT_MAX)}]}


def _buttons(links: list[tuple[str, str | None]]) -> list[dict]:
    """One actions block with a link button per (text, url) that has a url; none without any."""
    elements = [
        {"type": "button", "text": {"type": "plain_text", "text": text}, "url": url} for text, url in links if url
    ]
    return [{"type": "actions", "elements": elements}] if elements else []


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "n/a" if value is None else str(value)


def _metric_line(name: str, value, production) -> str:
    if production is None or not isinstance(value, (int, float)) or not isinstance(production, (int, float)):
        return _fmt(value)
    delta = value - production
    return f"{_fmt(value)} (production {_fmt(production)}, {delta:+.4f})"


def _confusion_matrix_text(matrix: dict | None) -> list[str]:
    if not matrix or not isinstance(matrix.get("matrix"), list):
        return []
    labels = [str(label) for label in matrix.get("labels") or range(len(matrix["matrix"]))]
    width = max([len(label) for label in labels] + [len(str(c)) for row in matrix["matrix"] for c in row] + [4])
    lines = [
        "Confusion matrix (rows: actual, columns: predicted):",
        " " * (width + 1) + " ".join(label.rjust(width) for label in labels),
    ]
    for label, row in zip(labels, matrix["matrix"], strict=False):
        lines.append(label.rjust(width) + " " + " ".join(str(c).rjust(width) for c in row))
    return lines


def _matrix_block(matrix: dict | None) -> list[dict]:
    """The confusion matrix as in the e-mail, in a code block so its columns stay aligned."""
    lines = _confusion_matrix_text(matrix)
    if not lines:
        return []
    title, *table = lines
    return [_section(f"*{title}*\n```" + "\n".join(table) + "```")]


def deploy_conf(project: str, model: str, model_version: str) -> str:
    return json.dumps({"project": project, "model": model, "model_version": model_version})


def _stats(values: dict) -> str:
    return ", ".join(f"{name} {_fmt(value)}" for name, value in values.items()) or "n/a"


def drift_lines(drift: dict) -> list[str]:
    """Why a drift retraining runs: the check, each drifted feature with its distance and its
    baseline and current statistics (the check's DriftCheckSummary), and where to look."""
    features = drift.get("features") or []
    window = f"{drift.get('window_start', '?')} to {drift.get('window_end', '?')}"
    lines = [
        f"Why: the drift check {drift['check_name']} found {len(features) or len(drift.get('names', []))} "
        f"drifted feature(s) in {drift.get('records', 'n/a')} captured records ({window}), "
        f"while {drift.get('model_version', '?')} was serving.",
    ]
    if features:
        for feature in features:
            lines += [
                f"  {feature['name']}: distance {_fmt(feature['distance'])} > threshold {_fmt(feature['threshold'])}",
                f"    baseline: {_stats(feature.get('baseline') or {})}",
                f"    current:  {_stats(feature.get('current') or {})}",
            ]
    else:  # the summary could not be read: the run's conf still names the features
        lines.append(f"  drifted: {', '.join(drift.get('names', [])) or 'n/a'} (statistics unavailable)")
    lines += [
        f"Violations report: {drift.get('violations_url') or drift.get('violations_uri') or 'n/a'}",
        f"Dashboard:         {drift.get('dashboard_url') or 'n/a'}",
    ]
    return lines


def _drift_blocks(drift: dict) -> list[dict]:
    features = drift.get("features") or []
    rows = [
        f"*{f['name']}*: distance {_fmt(f['distance'])} > {_fmt(f['threshold'])}\n"
        f"baseline: {_stats(f.get('baseline') or {})}\ncurrent: {_stats(f.get('current') or {})}"
        for f in features
    ] or [f"drifted: {', '.join(drift.get('names', [])) or 'n/a'} (statistics unavailable)"]
    return [
        _section(f"*Drift check `{drift['check_name']}`*\n" + "\n".join(rows)),
        *_buttons([("Violations report", drift.get("violations_url")), ("Open dashboard", drift.get("dashboard_url"))]),
    ]


def training_result(
    *,
    environment: str,
    project: str,
    model: str,
    run_name: str,
    model_version: str,
    retraining: bool,
    image_uri: str,
    training_data: str,
    metrics: dict,
    confusion_matrix: dict | None,
    production_run: str | None,
    production_metrics: dict | None,
    verdict: dict,
    package_arn: str,
    deployment_dag_id: str,
    drift: dict | None = None,
) -> Notification:
    """``drift``: for a drift retraining, what drift_lines shows (check name, features with their
    statistics, violations report and dashboard links)."""
    passed = verdict["passed"]
    outcome = "ready to deploy" if passed else "REJECTED by the quality gate"
    kind = "Drift retraining" if drift else ("Retraining" if retraining else "Training")
    subject = f"[mlops-{environment}] {kind} {project}/{model} {model_version}: {outcome}"
    gate_line = (
        f"Quality gate on {verdict['metric']} (threshold {_fmt(verdict['threshold'])}, allowed "
        f"regression {_fmt(verdict['max_regression'])}): {'PASSED' if passed else 'REJECTED'}"
    )
    production_metrics = production_metrics or {}
    metric_lines = [
        f"  {name}: {_metric_line(name, value, production_metrics.get(name))}"
        for name, value in sorted(metrics.items())
    ]
    if passed:
        how = (
            f"To deploy, trigger the DAG {deployment_dag_id} with the conf {deploy_conf(project, model, model_version)}"
        )
    else:
        how = "This candidate is recorded as Rejected in the model registry and cannot be deployed."
    text_lines = [
        f"{kind} of {project}/{model} finished: {outcome}.",
        "",
        f"Model version:   {model_version}",
        f"Run:             {run_name}",
        f"Image:           {image_uri}",
        f"Training data:   {training_data}",
        f"In production:   {production_run or 'nothing (first deployment)'}",
        f"Model package:   {package_arn}",
        *([""] + drift_lines(drift) if drift else []),
        "",
        "Metrics (candidate vs production):",
        *metric_lines,
        *([""] + _confusion_matrix_text(confusion_matrix) if confusion_matrix else []),
        "",
        gate_line,
        *[f"  - {reason}" for reason in verdict.get("reasons", [])],
        "",
        how,
    ]
    blocks = [
        _header(f"{'✅' if passed else '⛔'} {kind} {project}/{model} {model_version}: {outcome}"),
        *(_drift_blocks(drift) if drift else []),
        *_fields(
            [(name, _metric_line(name, value, production_metrics.get(name))) for name, value in sorted(metrics.items())]
        ),
        *_matrix_block(confusion_matrix),
        _section(gate_line + "".join(f"\n• {reason}" for reason in verdict.get("reasons", []))),
        _section(
            f"*How to deploy*\n`{deployment_dag_id}` with conf `{deploy_conf(project, model, model_version)}`"
            if passed
            else f"*Not deployable*\n{how}"
        ),
        _context(f"Run `{run_name}` · in production: `{production_run or 'none'}` · package `{package_arn}`"),
    ]
    return Notification(subject=subject, text="\n".join(text_lines), blocks=blocks)


def deployment_succeeded(
    *,
    environment: str,
    project: str,
    model: str,
    endpoint_name: str,
    model_version: str,
    run_name: str,
    previous_run: str | None,
    dashboard_url: str,
    smoke_test: str,
    unchanged: bool = False,
) -> Notification:
    if unchanged:  # a redeployment of the version already serving
        action = "it was already serving: nothing changed"
    else:
        action = f"updated from {previous_run}" if previous_run else "created"
    subject = f"[mlops-{environment}] Deployed {project}/{model} {model_version} to {endpoint_name}"
    text = "\n".join(
        [
            f"{project}/{model} {model_version} is serving on endpoint {endpoint_name} ({action}).",
            "",
            f"Endpoint:    {endpoint_name}",
            f"Version:     {model_version}",
            f"Model:       {run_name}",
            f"Previous:    {previous_run or 'none (first deployment)'}",
            f"Smoke test:  {smoke_test}",
            f"Dashboard:   {dashboard_url}",
        ]
    )
    blocks = [
        _header(f"🚀 {project}/{model} {model_version} deployed"),
        *_fields(
            [
                ("Endpoint", f"`{endpoint_name}`"),
                ("Version", model_version),
                ("Model", f"`{run_name}`"),
                ("Previous", f"`{previous_run}`" if previous_run else "none"),
                ("Smoke test", smoke_test),
            ]
        ),
        *_buttons([("Open dashboard", dashboard_url)]),
    ]
    return Notification(subject=subject, text=text, blocks=blocks)


def task_failed(
    *,
    environment: str,
    dag_id: str,
    task_id: str,
    run_id: str,
    try_number: int | None,
    error: str,
    log_url: str | None,
    subject_of_run: str | None,
) -> Notification:
    what = f" {subject_of_run}" if subject_of_run else ""
    subject = f"[mlops-{environment}] FAILED {dag_id}.{task_id}{what}"
    text = "\n".join(
        [
            f"Task {task_id} of DAG {dag_id} failed{(' for ' + subject_of_run) if subject_of_run else ''}.",
            "",
            f"DAG run:   {run_id}",
            f"Task:      {task_id} (try {try_number if try_number is not None else '?'})",
            f"Log:       {log_url or 'n/a'}",
            "",
            "Error:",
            error,
        ]
    )
    blocks = [
        _header(f"🔥 {dag_id}.{task_id} failed{what}"),
        *_fields([("DAG run", f"`{run_id}`"), ("Task", f"`{task_id}` (try {try_number})")]),
        _section(f"*Error*\n```{_truncate(error, SLACK_TEXT_MAX - 20)}```"),
        *_buttons([("View log", log_url)]),
    ]
    return Notification(subject=subject, text=text, blocks=blocks)


def dag_run_failed(
    *,
    environment: str,
    dag_id: str,
    run_id: str,
    failed_tasks: list[str],
    error: str,
    log_url: str | None,
    run_url: str | None,
    subject_of_run: str | None,
) -> Notification:
    what = f" {subject_of_run}" if subject_of_run else ""
    tasks = ", ".join(failed_tasks) or "none recorded"
    subject = f"[mlops-{environment}] Run of {dag_id} failed{what}"
    text = "\n".join(
        [
            f"The run {run_id} of DAG {dag_id} failed{(' for ' + subject_of_run) if subject_of_run else ''}.",
            "",
            f"Failed tasks: {tasks}",
            f"Error:        {error}",
            f"Log:          {log_url or 'n/a'}",
            f"Run:          {run_url or 'n/a'}",
        ]
    )
    blocks = [
        _header(f"🔥 {dag_id} run failed{what}"),
        *_fields([("DAG run", f"`{run_id}`"), ("Failed tasks", tasks)]),
        _section(f"*Error*\n```{_truncate(error, SLACK_TEXT_MAX - 20)}```"),
        *_buttons([("View log", log_url), ("Open run", run_url)]),
    ]
    return Notification(subject=subject, text=text, blocks=blocks)
