"""``make demo``: the whole pipeline on this machine, shown as it runs (rich).

python -m local_mode demo                                # every model: train, deploy, retrain, update
python -m local_mode demo --model fraud/scorer           # one model
python -m local_mode demo --model-repo ~/src/fraud-scorer  # a team's own model repository
python -m local_mode demo --fail                         # a training that fails: notified, nothing deployed
python -m local_mode demo --drift                        # drifting traffic: check -> alarm -> retraining
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.panel import Panel
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from local_mode import scenario
from local_mode.models import parse_model_repos
from local_mode.platform import STARTUP_TOTAL, LocalPlatform
from local_mode.progress import Steps
from mlops_core import names

console = Console()
STATE_STYLE = {
    "success": "green",
    "failed": "red",
    "upstream_failed": "red",
    "running": "yellow",
    "deferred": "yellow",
    "queued": "cyan",
    "scheduled": "cyan",
    None: "dim",
}


class StartupView:
    """The start-up steps, several at once, each with its elapsed time (re-rendered by Live)."""

    def __init__(self, steps: Steps) -> None:
        self.steps = steps
        self.spinners: dict[str, Spinner] = {}

    def __rich__(self) -> Table:
        table = Table.grid(padding=(0, 1))
        for column in ("mark", "step", "seconds", "detail"):
            table.add_column(column, justify="right" if column == "seconds" else "left")
        for step in self.steps.all():
            if step.running:
                mark: Any = self.spinners.setdefault(step.name, Spinner("dots", style="yellow"))
            else:
                mark = Text("✗", style="red") if step.failed else Text("✓", style="green")
            table.add_row(mark, step.name, f"{step.seconds:5.1f} s", Text(step.detail, style="dim"))
        return table


class TasksView:
    """One DAG run's tasks: state, and seconds (Airflow's duration, or elapsed while running)."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.tasks: dict[str, dict[str, Any]] = {}
        self.started = time.monotonic()

    def __rich__(self) -> Table:
        table = Table(
            title=f"{self.title} ({time.monotonic() - self.started:.0f} s)", title_justify="left", expand=False
        )
        table.add_column("task")
        table.add_column("state")
        table.add_column("seconds", justify="right")
        now = datetime.now(UTC)
        for task_id, info in self.tasks.items():
            state = info.get("state")
            seconds = info.get("duration")
            if state in ("running", "deferred") and info.get("start_date"):
                started = datetime.fromisoformat(info["start_date"].replace("Z", "+00:00"))
                seconds = max(0.0, (now - started).total_seconds())
            style = STATE_STYLE.get(state, "white")
            table.add_row(task_id, f"[{style}]{state or 'waiting'}[/]", f"{seconds:.1f}" if seconds else "")
        return table


class Show:
    """Live task tables while a DAG run is in progress."""

    def __init__(self) -> None:
        self.live: Live | None = None

    def watch(self, title: str):
        view = TasksView(title)

        def update(tasks: dict) -> None:
            view.tasks = tasks
            if self.live is None:
                self.live = Live(view, console=console, refresh_per_second=4, transient=False)
                self.live.start()

        return update

    def then_watch(self, title: str):
        """A watch that first ends the table shown now (the run before this one)."""
        update = None

        def first_done_then_update(tasks: dict) -> None:
            nonlocal update
            if update is None:
                self.done()
                update = self.watch(title)
            update(tasks)

        return first_done_then_update

    def done(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
            _end_line()


def _end_line() -> None:
    """Off a terminal, Live leaves its last line open: what follows would be printed on it."""
    if not console.is_terminal:
        console.print()


def _notifications(title: str, sns: list, slack: list) -> None:
    for message in sns:
        console.print(
            Panel(
                escape(message["message"].strip()[:1500]),
                title=escape(f"SNS (via SQS): {message['subject']}"),
                border_style="blue",
            )
        )
    for payload in slack:
        blocks = [b for b in payload.get("blocks", []) if b.get("type") in ("header", "section")]
        lines = []
        for block in blocks:
            text = block.get("text", {}).get("text") or ""
            fields = "   ".join(f.get("text", "").replace("\n", " ") for f in block.get("fields", []) or [])
            lines.append(text or fields)
        console.print(
            Panel(
                escape("\n".join(lines)[:1500] or json.dumps(payload)[:800]),
                title=escape(f"Slack webhook: {payload.get('text', '')}"),
                border_style="magenta",
            )
        )
    if not sns and not slack:
        console.print(f"[red]no notification arrived for {title}[/]")


def _metrics(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in sorted(metrics.items()))


def run(args: argparse.Namespace, state_dir: Path) -> int:
    journal = scenario.Journal()
    show = Show()
    steps = Steps()
    platform = LocalPlatform(
        state_dir=state_dir,
        say=lambda text: console.print(f"  {escape(text)}"),
        models=args.model,
        model_repos=parse_model_repos(args.model_repo),
        project_files=args.project_file,
        steps=steps,
    )
    summary: list[tuple[str, str]] = []
    ok = False
    try:
        console.rule("[bold]MLOps platform, locally: local AWS + CDK app + Airflow 3 + model repositories")
        with Live(StartupView(steps), console=console, refresh_per_second=4):
            platform.start()
        _end_line()
        journal.add("start-up: local AWS, CDK synth + resources, Airflow 3", journal.started)
        console.print(
            f"[green]✓[/] local AWS at {platform.aws.url}, Airflow 3 at {platform.airflow.url}; "
            f"running {', '.join(m.key for m in platform.models)} (start-up {platform.timings[STARTUP_TOTAL]:.1f} s)"
        )
        for line in platform.skipped:
            console.print(f"[yellow]not run:[/] {escape(line)}")
        story = _failure_story if args.fail else _drift_story if args.drift else _success_story
        ok = story(platform, journal, show, summary)
        _summary(journal, summary)
        _write_summary(state_dir, ok, journal, summary)
        if args.keep_running and ok:
            _keep_running(platform)
        return 0 if ok else 1
    except KeyboardInterrupt:
        show.done()
        console.print("\n[yellow]interrupted: stopping every process local mode started[/]")
        return 130
    except Exception as exc:  # noqa: BLE001 - shown with where the logs are, then everything stops
        show.done()
        # A configuration mistake (ConfigurationError, ModelSelectionError) says what to do: no type
        # name. mlops_constructs is not imported here: importing it starts jsii before synth set it up.
        headline = getattr(exc, "headline", None)
        console.print(
            f"[red bold]{headline or 'failed'}:[/] {'' if headline else type(exc).__name__ + ': '}{escape(str(exc))}"
        )
        return 1
    finally:
        show.done()
        with _uninterruptible(), console.status("stopping local AWS, Airflow, endpoints ..."):
            platform.stop()
        _authorization(platform.authorization)
        console.print("logs:\n  " + "\n  ".join(platform.log_locations()))
        console.print(f"state and summary.json: {state_dir}")


def _keep_running(platform: LocalPlatform) -> None:
    # Plain lines, soft-wrapped by the terminal: a copied command is one line, with no box characters.
    for model in platform.models:
        access = platform.endpoint_access(model)
        console.rule(f"[bold green]{model.key}: endpoint {model.endpoint_name}")
        for label, text in (
            ("InvokeEndpoint URL (SigV4-signed for 'sagemaker', as on AWS)", access.url),
            ("curl", access.curl),
            ("boto3", access.boto3),
        ):
            console.print(f"[bold]{label}:[/]")
            console.print(text, soft_wrap=True, markup=False, highlight=False)
    console.print(f"Airflow UI at {platform.airflow.url}. Ctrl-C to stop everything.")
    while True:
        time.sleep(3600)


def _failure_story(platform: LocalPlatform, journal: scenario.Journal, show: Show, summary: list) -> bool:
    ok = True
    for model in platform.models:
        console.rule(f"[bold red]{model.key}: a commit whose training fails")
        outcome = scenario.failing_training(
            platform,
            model,
            journal,
            label=_label(platform, model, "broken commit"),
            on_tasks=show.watch(f"Training & Evaluation of {model.key}"),
        )
        show.done()
        _notifications("the failed training", outcome.training.sns, outcome.training.slack)
        deployed = outcome.endpoint_after
        verdict = "nothing deployed" if outcome.nothing_deployed else "[red]something was deployed![/]"
        console.print(
            f"[bold]{outcome.training.run.state}[/]: {verdict}; endpoint: "
            f"{(deployed or {}).get('EndpointStatus', 'none')}; candidates registered: "
            f"{outcome.packages_after - outcome.packages_before}"
        )
        summary += [
            (f"{model.key}: training run", outcome.training.run.state),
            (f"{model.key}: deployed", "no" if outcome.nothing_deployed else "YES"),
            (f"{model.key}: image version", outcome.training.version.get("IMAGE_TAG", "")),
        ]
        # The demo shows *training* failing, notified on both channels; any other failure (a task
        # that could not even start) is a failure of the demo itself.
        train_state = outcome.training.run.tasks.get("train", {}).get("state")
        expected = (
            outcome.training.run.state == "failed"
            and train_state == "failed"
            and outcome.nothing_deployed
            and bool(outcome.training.sns)
            and bool(outcome.training.slack)
        )
        if not expected:
            console.print(f"[red]not the expected failure:[/] train task {train_state}; see the logs below")
        ok = ok and expected
    return ok


def _label(platform: LocalPlatform, model, text: str) -> str:
    return f"{model.key}: {text}" if len(platform.models) > 1 else text


def _first_training(platform, model, journal, show: Show) -> scenario.TrainingResult | None:
    """CI's release and the trigger Lambda's Training & Evaluation run, shown; None if it failed."""
    trained = scenario.train(
        platform,
        model,
        journal,
        label=_label(platform, model, "first training"),
        on_tasks=show.watch(f"Training & Evaluation of {model.key}"),
    )
    show.done()
    console.print(f"  {trained.version.get('output', '').splitlines()[0] if trained.version else ''}")
    answer = {k: trained.trigger.get(k) for k in ("status", "dag_run_id", "state", "created")}
    console.print("  trigger Lambda: " + json.dumps(answer))
    _notifications("training", trained.sns, trained.slack)
    if trained.run.state != "success" or not trained.model_version:
        console.print(f"[red]training of {model.key} ended {trained.run.state}[/]")
        return None
    console.print(f"[green]✓[/] candidate {model.key} {trained.model_version}: {_metrics(trained.metrics)}")
    return trained


def _success_story(platform: LocalPlatform, journal: scenario.Journal, show: Show, summary: list) -> bool:
    models = platform.models
    first: dict[str, scenario.TrainingResult] = {}
    for model in models:
        console.rule(f"[bold]1. {model.key}: CI versions and publishes the image, the trigger Lambda starts training")
        trained = _first_training(platform, model, journal, show)
        if trained is None:
            return False
        first[model.key] = trained

    for model in models:
        version = first[model.key].model_version
        console.rule(f"[bold]2. Approve {model.key} {version}: the Deployment DAG creates the endpoint")
        if not _deployed(platform, model, journal, show, version, "first deployment"):
            return False

    console.rule("[bold]3. The Retraining DAG (run now, ignore_interval) retrains every serving model")

    def watch(model):
        show.done()
        return show.watch(f"Training & Evaluation of {model.key} (retraining)")

    retrained = scenario.retrain(platform, models, journal, watch=watch)
    show.done()
    for model in models:
        result = retrained.get(model.key)
        if result is None:
            console.print(f"[red]the Retraining DAG did not retrain {model.key}[/]")
            return False
        _notifications("retraining", result.sns, result.slack)
        if result.run.state != "success" or not result.model_version:
            console.print(f"[red]retraining of {model.key} ended {result.run.state}[/]")
            return False

    for model in models:
        version = retrained[model.key].model_version
        strategy = model.config.get("deployment", {}).get("strategy", "blue_green")
        trial = {"shadow": "a shadow trial on live traffic, then ", "ab": "an A/B test, then "}
        console.rule(f"[bold]4. Approve {model.key} {version}: {trial.get(strategy, '')}the endpoint is updated")
        # Requests arrive meanwhile, as from the model's callers: what a trial judges the candidate on.
        updated = _deployed(platform, model, journal, show, version, "update deployment", traffic=strategy in trial)
        if not updated:
            return False
        if updated.trial_outcome:
            summary.append((f"{model.key}: {strategy} trial", _trial_summary(updated)))
        endpoint = updated.endpoint or {}
        summary += [
            (f"{model.key}: image version (mlops image release)", first[model.key].version.get("IMAGE_TAG", "")),
            (f"{model.key}: model versions", f"{first[model.key].model_version} -> {version}"),
            (f"{model.key}: metrics (first)", _metrics(first[model.key].metrics)),
            (f"{model.key}: metrics (retrained)", _metrics(retrained[model.key].metrics)),
            (
                f"{model.key}: endpoint",
                f"{endpoint.get('EndpointName')} {endpoint.get('EndpointStatus')} "
                f"on {endpoint.get('EndpointConfigName')}",
            ),
            (
                f"{model.key}: serving",
                f"{updated.answer['model']['model_version']} (invoke {updated.invoke_seconds * 1000:.0f} ms)",
            ),
        ]
    return True


def _drift_story(platform: LocalPlatform, journal: scenario.Journal, show: Show, summary: list) -> bool:
    """Capture -> drift check -> alarm -> trigger Lambda -> retraining -> notice, per model: first
    the serving model gets traffic like its test data (no drift, nothing starts), then the same
    records shifted far from the training data."""
    for model in platform.models:
        console.rule(f"[bold]1. {model.key}: first training and deployment (data capture and drift checks on)")
        trained = _first_training(platform, model, journal, show)
        if trained is None or not _deployed(platform, model, journal, show, trained.model_version, "first deployment"):
            return False
        results = {}
        for step, shift in ((2, False), (3, True)):
            what = (
                "shifted traffic: capture -> drift check -> alarm -> trigger Lambda -> Training & Evaluation"
                if shift
                else "traffic like the test data: capture -> drift check, nothing drifts, nothing starts"
            )
            console.rule(f"[bold]{step}. {model.key}: {what}")
            result = scenario.drift(
                platform,
                model,
                journal,
                label=_label(platform, model, "shifted" if shift else "unshifted"),
                shift=shift,
                on_check=show.watch(f"Drift Check of {model.key}"),
                on_retraining=show.then_watch(f"Drift retraining of {model.key}"),
            )
            show.done()
            _drift_check_table(result)
            if result.retraining is not None:
                _notifications("the drift retraining", result.retraining.sns, result.retraining.slack)
            results[shift] = result
        calm, drifted = results[False], results[True]
        expected = (
            calm.check.state == "success"
            and not calm.drifted
            and calm.retraining is None
            and drifted.check.state == "success"
            and bool(drifted.drifted)
            and drifted.retraining is not None
            and drifted.retraining.run.state == "success"
        )
        if not expected:
            console.print("[red]not the expected drift loop[/]: see the stages and the logs below")
        loop = f"{drifted.loop_seconds:.1f} s" if drifted.loop_seconds is not None else "no retraining"
        summary += [
            (f"{model.key}: unshifted traffic", _drift_outcome(calm)),
            (f"{model.key}: shifted traffic", _drift_outcome(drifted)),
            (f"{model.key}: first shifted request -> retraining run started", loop),
        ]
        if not expected:
            return False
    return True


def _drift_outcome(result: scenario.DriftResult) -> str:
    drifted = ", ".join(feature["name"] for feature in result.drifted) or "none"
    retraining = result.retraining.model_version if result.retraining else "none"
    return (
        f"{result.requests} requests, drifted: {drifted}, alarm {(result.alarm or {}).get('StateValue')}, "
        f"retraining: {retraining}"
    )


def _drift_check_table(result: scenario.DriftResult) -> None:
    summary = result.summary or {}
    table = Table(
        title=f"Drift check {summary.get('check_name', '(none)')}: {summary.get('records', 0)} records, "
        f"window {summary.get('window_start', '?')} .. {summary.get('window_end', '?')}",
        title_justify="left",
    )
    for column in ("feature", "distance", "threshold", "baseline mean", "current mean"):
        table.add_column(column, justify="left" if column == "feature" else "right")
    for feature in result.drifted:
        table.add_row(
            feature["name"],
            f"{feature['distance']:.3f}",
            f"{feature['threshold']:g}",
            _shown_stat(feature.get("baseline", {}).get("mean")),
            _shown_stat(feature.get("current", {}).get("mean")),
        )
    if not result.drifted:
        table.add_row("(no feature drifted)", "", "", "", "")
    console.print(table)
    alarm = result.alarm or {}
    console.print(f"  drift alarm {alarm.get('AlarmName')}: [bold]{alarm.get('StateValue')}[/]")
    if result.retraining is None:
        console.print("  no Training & Evaluation run started")
    else:
        run = result.retraining.run
        console.print(
            f"  trigger Lambda started {names.DAG_TRAINING} {run.run_id}: reason {run.conf.get('reason')}, "
            f"drifted_features {run.conf.get('drifted_features')} -> {run.state}, "
            f"{result.retraining.model_version} (first shifted request -> run started {result.loop_seconds:.1f} s)"
        )


def _shown_stat(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, int | float) else str(value or "")


def _trial_summary(result: scenario.DeploymentResult) -> str:
    outcome = (result.trial_outcome or "").split(":", 1)[0]
    traffic = result.traffic
    sent = f"{traffic.sent} requests sent during the run, {len(traffic.refused)} refused" if traffic else ""
    return f"{outcome}; {sent}" if sent else outcome


def _deployed(
    platform, model, journal, show, version: str, label: str, *, traffic: bool = False
) -> scenario.DeploymentResult | None:
    result = scenario.deploy(
        platform,
        model,
        journal,
        label=_label(platform, model, label),
        model_version=version,
        on_tasks=show.watch(f"Deployment of {model.key}"),
        traffic=traffic,
    )
    show.done()
    _notifications("deployment", result.sns, result.slack)
    if result.run.state != "success" or not result.answer:
        console.print(f"[red]deployment of {model.key} ended {result.run.state}[/]")
        return None
    console.print(
        Panel(
            escape(json.dumps(result.answer, indent=2)),
            title=f"sagemaker-runtime invoke_endpoint {model.endpoint_name} (2 records)",
            border_style="green",
        )
    )
    return result


def _summary(journal: scenario.Journal, summary: list[tuple[str, str]]) -> None:
    table = Table(title="Stages", title_justify="left", show_footer=True)
    table.add_column("stage", footer="total")
    table.add_column("seconds", justify="right", footer=f"{journal.total_seconds:.1f}")
    table.add_column("result")
    for stage in journal.stages:
        table.add_row(stage.name, f"{stage.seconds:.1f}", stage.detail.splitlines()[0] if stage.detail else "")
    console.print(table)
    by_model: dict[str, list[tuple[str, str]]] = {}
    for key, value in summary:
        model, _, what = key.partition(": ")
        by_model.setdefault(model, []).append((what, value))
    for model, facts in by_model.items():
        console.print(f"[bold]Result: {escape(model)}[/]")  # not a table title: a narrow table would wrap it
        result = Table(show_header=False)
        result.add_column("what")
        result.add_column("value")
        for what, value in facts:
            result.add_row(what, str(value))
        console.print(result)


def _write_summary(state_dir: Path, ok: bool, journal: scenario.Journal, summary: list[tuple[str, str]]) -> None:
    """summary.json in the state directory: what the screen shows, for scripts and tests."""
    document = {
        "ok": ok,
        "total_seconds": round(journal.total_seconds, 1),
        "stages": [{"name": s.name, "seconds": round(s.seconds, 1), "detail": s.detail} for s in journal.stages],
        "result": dict(summary),
    }
    (state_dir / "summary.json").write_text(json.dumps(document, indent=2))


def _authorization(summary: dict | None) -> None:
    if not summary or not summary.get("enforced"):
        return
    denied = summary["denied"]
    console.print(
        f"IAM: local AWS authorized {summary['requests_checked']} requests, {summary['distinct_checks']} distinct "
        f"(principal, action, resource) checks; {len(denied)} denied"
    )
    for entry in denied:
        console.print(f"  [red]denied[/] {escape(entry['message'])}")


@contextlib.contextmanager
def _uninterruptible():
    """Another Ctrl-C (or SIGTERM) must not cut the clean-up short and leave processes behind."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.getsignal(signum) for signum in signals}
    for signum in signals:
        signal.signal(signum, lambda *_: console.print("[yellow]still stopping every process ...[/]"))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _split(values: list[str]) -> list[str]:
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local_mode demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="PROJECT/MODEL",
        help="the model(s) to run (repeatable or comma-separated; default: every model, or the --model-repo's)",
    )
    parser.add_argument(
        "--model-repo",
        action="append",
        default=[],
        metavar="[PROJECT/MODEL=]PATH",
        help="a model repository made from the template, standing in for the model's image (default: model_template/)",
    )
    parser.add_argument(
        "--project-file",
        action="append",
        default=[],
        type=Path,
        metavar="PATH",
        help="a project file kept elsewhere, added to projects/ (replaces the project of the same PROJECT)",
    )
    parser.add_argument("--fail", action="store_true", help="demonstrate a failed training instead")
    parser.add_argument(
        "--drift",
        action="store_true",
        help="demonstrate the drift loop instead: traffic like the training data, then shifted traffic that retrains",
    )
    parser.add_argument("--state-dir", type=Path, help="where state and logs go (default: a new temp dir, kept)")
    parser.add_argument("--keep-running", action="store_true", help="keep the endpoint and Airflow up until Ctrl-C")
    args = parser.parse_args(argv)
    args.model = _split(args.model)
    state_dir = args.state_dir or Path(tempfile.mkdtemp(prefix="mlops-local-"))
    # SIGTERM (e.g. from make or CI) cleans up like Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    return run(args, state_dir)


if __name__ == "__main__":
    sys.exit(main())
