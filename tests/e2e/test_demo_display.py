"""What `make demo` shows while it runs: each start-up step with its time, running tasks with their
elapsed time (Airflow reports a duration only once a task ends), and a total."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from rich.console import Console

from local_mode import scenario
from local_mode.demo import StartupView, TasksView, _summary
from local_mode.progress import Steps


def _text(renderable) -> str:
    console = Console(record=True, width=120, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_a_running_task_shows_its_elapsed_time_and_a_finished_one_its_duration():
    view = TasksView("Training & Evaluation")
    started = (datetime.now(UTC) - timedelta(seconds=42)).isoformat()
    view.tasks = {
        "prepare_run": {"state": "success", "duration": 1.25, "start_date": None},
        "train": {"state": "running", "duration": None, "start_date": started},
        "evaluate": {"state": None, "duration": None, "start_date": None},
    }
    lines = {line.split("│")[1].strip(): line for line in _text(view).splitlines() if line.count("│") >= 3}
    assert "1.2" in lines["prepare_run"]
    assert "running" in lines["train"] and any(f"{s}." in lines["train"] for s in (42, 43, 44))
    assert "waiting" in lines["evaluate"]


def test_start_up_steps_show_as_they_run_with_their_seconds_and_what_they_found():
    steps = Steps()
    with steps.step("local AWS on 127.0.0.1") as step:
        step.detail = "http://127.0.0.1:1234"
    with steps.step("Airflow 3: database"):
        shown = _text(StartupView(steps))
        time.sleep(0.01)
    assert "✓ local AWS on 127.0.0.1" in shown and "http://127.0.0.1:1234" in shown
    assert "Airflow 3: database" in shown and "✓ Airflow 3" not in shown  # still running
    assert steps.seconds("Airflow 3: database") > 0


def test_the_stages_table_ends_with_the_total(capsys):
    journal = scenario.Journal(started=time.monotonic() - 100)
    journal.stages.append(scenario.Stage("first training: Training & Evaluation DAG", 60.0, "success, 0.1.0+r0"))
    _summary(journal, [("a/b: model versions", "0.1.0+r0 -> 0.1.0+r1")])
    out = capsys.readouterr().out
    assert "total" in out and "100." in out
    assert "Result: a/b" in out and "0.1.0+r0 -> 0.1.0+r1" in out


def test_keep_running_prints_each_endpoint_s_commands_whole_on_one_line(monkeypatch):
    """What a person copies must be exactly the command that tests/e2e runs (EndpointAccess)."""
    from types import SimpleNamespace

    import local_mode.demo as demo
    from local_mode.platform import EndpointAccess

    access = EndpointAccess(
        url="http://127.0.0.1:1/endpoints/a--b/invocations",
        curl="curl -s --aws-sigv4 'aws:amz:us-east-1:sagemaker' --user testing:testing -H 'Content-Type: text/csv' "
        "--data-binary 1,2,3 http://127.0.0.1:1/endpoints/a--b/invocations",
        boto3="AWS_ENDPOINT_URL=http://127.0.0.1:1 /venv/bin/python -c 'import boto3; print(1)'",
    )
    model = SimpleNamespace(key="a/b", endpoint_name="a--b")
    platform = SimpleNamespace(
        models=[model], endpoint_access=lambda m: access, airflow=SimpleNamespace(url="http://127.0.0.1:2")
    )
    recording = Console(record=True, width=60, color_system=None)
    monkeypatch.setattr(demo, "console", recording)
    monkeypatch.setattr(demo.time, "sleep", lambda seconds: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        demo._keep_running(platform)
    except KeyboardInterrupt:
        pass
    lines = recording.export_text(styles=False).splitlines()
    assert access.url in lines and access.curl in lines and access.boto3 in lines
