"""``make demo``: the whole pipeline on this machine, shown as it runs (rich).

python -m local_mode demo            # first training, deployment, retraining, update in place
python -m local_mode demo --fail     # a training that fails: notified, nothing deployed
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
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from local_mode import scenario
from local_mode.platform import LocalPlatform

console = Console()
STATE_STYLE = {
    "success": "green",
    "failed": "red",
    "upstream_failed": "red",
    "running": "yellow",
    "queued": "cyan",
    "scheduled": "cyan",
    None: "dim",
}


def _task_table(title: str, tasks: dict) -> Table:
    table = Table(title=title, title_justify="left", expand=False)
    table.add_column("task")
    table.add_column("state")
    table.add_column("seconds", justify="right")
    for task_id, info in tasks.items():
        state = info.get("state")
        style = STATE_STYLE.get(state, "white")
        duration = info.get("duration")
        table.add_row(task_id, f"[{style}]{state or 'waiting'}[/]", f"{duration:.1f}" if duration else "")
    return table


class Show:
    """Live task tables while a DAG run is in progress."""

    def __init__(self) -> None:
        self.live: Live | None = None

    def watch(self, title: str):
        def update(tasks: dict) -> None:
            table = _task_table(title, tasks)
            if self.live is None:
                self.live = Live(table, console=console, refresh_per_second=4, transient=False)
                self.live.start()
            else:
                self.live.update(table)

        return update

    def done(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None


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


def _stage(name: str):
    return console.status(f"[bold]{name}[/] ...", spinner="dots")


def run(fail: bool, state_dir: Path, keep_running: bool) -> int:
    journal = scenario.Journal()
    show = Show()
    platform = LocalPlatform(state_dir=state_dir, say=lambda text: console.print(f"  {escape(text)}"))
    summary: list[tuple[str, str]] = []
    try:
        console.rule("[bold]MLOps platform, locally: local AWS + CDK app + Airflow 3 + the model template")
        with _stage("local AWS, CDK synth + provisioning, Airflow 3 (scheduler, API server, DAG processor)"):
            platform.start()
        for name, seconds in platform.timings.items():
            journal.stages.append(scenario.Stage(f"start-up: {name}", seconds))
        console.print(
            f"[green]✓[/] local AWS at {platform.aws.url}, Airflow 3 at {platform.airflow.url} "
            f"(start-up {platform.timings['start-up total']:.1f} s)"
        )

        if fail:
            console.rule("[bold red]A commit whose training fails")
            outcome = scenario.failing_training(platform, journal, on_tasks=show.watch("Training & Evaluation"))
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
                ("training run", outcome.training.run.state),
                ("deployed", "no" if outcome.nothing_deployed else "YES"),
                ("image version", outcome.training.version.get("IMAGE_TAG", "")),
            ]
            # The demo shows *training* failing, notified on both channels; any other failure
            # (a task that could not even start) is a failure of the demo itself.
            train_state = outcome.training.run.tasks.get("train", {}).get("state")
            ok = (
                outcome.training.run.state == "failed"
                and train_state == "failed"
                and outcome.nothing_deployed
                and bool(outcome.training.sns)
                and bool(outcome.training.slack)
            )
            if not ok:
                console.print(f"[red]not the expected failure:[/] train task {train_state}; see the logs below")
        else:
            ok = _success_story(platform, journal, show, summary)
        _summary(journal, summary)
        if keep_running and ok:
            console.print(f"endpoint serving; Airflow UI at {platform.airflow.url}. Ctrl-C to stop everything.")
            while True:
                time.sleep(3600)
        return 0 if ok else 1
    except KeyboardInterrupt:
        show.done()
        console.print("\n[yellow]interrupted: stopping every process local mode started[/]")
        return 130
    except Exception as exc:  # noqa: BLE001 - shown with where the logs are, then everything stops
        show.done()
        console.print(f"[red bold]failed:[/] {type(exc).__name__}: {exc}")
        return 1
    finally:
        show.done()
        with _uninterruptible(), console.status("stopping local AWS, Airflow, endpoints ..."):
            platform.stop()
        _authorization(platform.authorization)
        console.print("logs:\n  " + "\n  ".join(platform.log_locations()))


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


def _success_story(platform: LocalPlatform, journal: scenario.Journal, show: Show, summary: list) -> bool:
    console.rule("[bold]1. CI: version, publish, trigger Training & Evaluation through the trigger Lambda")
    first = scenario.train(platform, journal, label="first training", on_tasks=show.watch("Training & Evaluation"))
    show.done()
    console.print(f"  {first.version.get('output', '').splitlines()[0] if first.version else ''}")
    console.print(
        "  trigger Lambda: "
        + json.dumps({k: first.trigger.get(k) for k in ("status", "dag_run_id", "state", "created")})
    )
    _notifications("training", first.sns, first.slack)
    if first.run.state != "success" or not first.model_version:
        console.print(f"[red]training ended {first.run.state}[/]")
        return False
    console.print(f"[green]✓[/] candidate {first.model_version}: {first.metrics}")

    console.rule(f"[bold]2. Approve {first.model_version}: the Deployment DAG creates the endpoint")
    deployed = scenario.deploy(
        platform,
        journal,
        label="first deployment",
        model_version=first.model_version,
        on_tasks=show.watch("Deployment"),
    )
    show.done()
    _notifications("deployment", deployed.sns, deployed.slack)
    if deployed.run.state != "success" or not deployed.answer:
        console.print(f"[red]deployment ended {deployed.run.state}[/]")
        return False
    console.print(
        Panel(
            escape(json.dumps(deployed.answer, indent=2)),
            title="sagemaker-runtime invoke_endpoint (2 records)",
            border_style="green",
        )
    )

    console.rule("[bold]3. The Retraining DAG (run now, ignore_interval) retrains the serving image")
    retrained = scenario.train(
        platform,
        journal,
        label="retraining",
        retraining=True,
        on_tasks=show.watch("Training & Evaluation (retraining)"),
    )
    show.done()
    _notifications("retraining", retrained.sns, retrained.slack)
    if retrained.run.state != "success" or not retrained.model_version:
        console.print(f"[red]retraining ended {retrained.run.state}[/]")
        return False
    console.rule(f"[bold]4. Approve {retrained.model_version}: the endpoint is updated in place")
    updated = scenario.deploy(
        platform,
        journal,
        label="update deployment",
        model_version=retrained.model_version,
        on_tasks=show.watch("Deployment (update)"),
    )
    show.done()
    _notifications("update", updated.sns, updated.slack)
    if updated.run.state != "success" or not updated.answer:
        console.print(f"[red]update ended {updated.run.state}[/]")
        return False
    console.print(
        Panel(
            escape(json.dumps(updated.answer, indent=2)), title="invoke_endpoint after the update", border_style="green"
        )
    )
    endpoint = updated.endpoint or {}
    metrics = ", ".join(f"{k} {v:.3f}" for k, v in sorted(first.metrics.items()))
    summary += [
        ("image version (mlops version next)", first.version.get("IMAGE_TAG", "")),
        ("first model version", first.model_version),
        ("retrained model version", retrained.model_version),
        ("metrics (first)", metrics),
        ("metrics (retrained)", ", ".join(f"{k} {v:.3f}" for k, v in sorted(retrained.metrics.items()))),
        (
            "endpoint",
            f"{endpoint.get('EndpointName')} {endpoint.get('EndpointStatus')} on {endpoint.get('EndpointConfigName')}",
        ),
        ("serving", f"{updated.answer['model']['model_version']} (invoke {updated.invoke_seconds * 1000:.0f} ms)"),
    ]
    return True


def _summary(journal: scenario.Journal, summary: list[tuple[str, str]]) -> None:
    table = Table(title="Stages", title_justify="left")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    table.add_column("result")
    for stage in journal.stages:
        table.add_row(stage.name, f"{stage.seconds:.1f}", stage.detail.splitlines()[0] if stage.detail else "")
    console.print(table)
    if summary:
        facts = Table(title="Result", title_justify="left", show_header=False)
        facts.add_column("what")
        facts.add_column("value")
        for key, value in summary:
            facts.add_row(key, str(value))
        console.print(facts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local_mode demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fail", action="store_true", help="demonstrate a failed training instead")
    parser.add_argument("--state-dir", type=Path, help="where state and logs go (default: a new temp dir, kept)")
    parser.add_argument("--keep-running", action="store_true", help="keep the endpoint and Airflow up until Ctrl-C")
    args = parser.parse_args(argv)
    state_dir = args.state_dir or Path(tempfile.mkdtemp(prefix="mlops-local-"))
    # SIGTERM (e.g. from make or CI) cleans up like Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    return run(args.fail, state_dir, args.keep_running)


if __name__ == "__main__":
    sys.exit(main())
