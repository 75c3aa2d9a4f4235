"""LocalPlatform.stop() during start-up: Airflow boots in a thread while the main thread provisions.
A Ctrl-C or SIGTERM then (the demo turns SIGTERM into KeyboardInterrupt) must stop ``airflow db
migrate`` and keep the boot thread from starting Airflow afterwards.

A stand-in ``airflow`` executable records each command's pid; no real Airflow, local AWS or CDK."""

from __future__ import annotations

import sys
import textwrap
import time
from types import SimpleNamespace

import pytest
from process_helpers import running

from local_mode.platform import LocalPlatform
from local_mode.processes import ProcessGroup, StopRequested

pytestmark = pytest.mark.integration

FAKE_AIRFLOW = textwrap.dedent(
    """\
    #!{python}
    import os, signal, sys, time
    from pathlib import Path

    home = Path(os.environ["AIRFLOW_HOME"])
    command = "-".join(sys.argv[1:3] if sys.argv[1] == "db" else sys.argv[1:2])
    (home / f"{{command}}.pid").write_text(str(os.getpid()))
    if command == "db-migrate":
        if {migrate_ignores_sigterm}:
            # Finishes just after the stop was requested: the boot thread goes on to start Airflow.
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            time.sleep(1.5)
            (home / "airflow.db").write_bytes(b"")
            sys.exit(0)
        time.sleep(300)
    time.sleep(300)
    """
)


@pytest.mark.parametrize("migrate_ignores_sigterm", [False, True], ids=["migrate-stopped", "migrate-finishes"])
def test_stop_during_airflow_boot_leaves_no_airflow_process(tmp_path, monkeypatch, migrate_ignores_sigterm):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    airflow = venv / "bin" / "airflow"
    airflow.write_text(FAKE_AIRFLOW.format(python=sys.executable, migrate_ignores_sigterm=migrate_ignores_sigterm))
    airflow.chmod(0o755)
    platform = LocalPlatform(state_dir=tmp_path / "state", say=lambda text: None, airflow_venv=venv)
    home = platform.airflow.home

    def start_aws() -> None:
        platform.aws = SimpleNamespace(env={}, stop=lambda: None, region="us-east-1", url="http://127.0.0.1:1")

    def provision() -> None:  # interrupted while Airflow's database migrates
        deadline = time.monotonic() + 30
        while not (home / "db-migrate.pid").exists():
            assert time.monotonic() < deadline, "airflow db migrate never started"
            time.sleep(0.05)
        raise KeyboardInterrupt

    monkeypatch.setattr(platform, "_start_aws", start_aws)
    monkeypatch.setattr(platform, "_provision", provision)
    with pytest.raises(KeyboardInterrupt):
        platform.start()
    migrate = int((home / "db-migrate.pid").read_text())
    assert running(migrate)

    started = time.monotonic()
    platform.stop()
    assert time.monotonic() - started < 15
    assert not platform._booting.is_alive()
    assert not running(migrate)
    assert platform.processes.processes == []
    time.sleep(0.5)  # nothing may start after stop() returned either
    assert sorted(p.name for p in home.glob("*.pid")) == ["db-migrate.pid"]  # no api-server, scheduler ...


def test_a_stopping_process_group_starts_nothing_and_stops_whole_sessions(tmp_path):
    group = ProcessGroup(tmp_path)
    # Like Airflow's scheduler: a task process in a process group of its own, in the same session.
    script = (
        "import subprocess, sys, time; "
        "task = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'], process_group=0); "
        f"open({str(tmp_path / 'task.pid')!r}, 'w').write(str(task.pid)); time.sleep(300)"
    )
    scheduler = group.start("scheduler", [sys.executable, "-c", script], env={})
    deadline = time.monotonic() + 10
    while not (tmp_path / "task.pid").exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    task = int((tmp_path / "task.pid").read_text())
    group.request_stop()
    with pytest.raises(StopRequested):
        group.start("late", [sys.executable, "-c", "pass"], env={})
    group.stop_all(grace=5)
    assert scheduler.process.returncode is not None  # reaped
    deadline = time.monotonic() + 5
    while running(task) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(task)
    assert not (tmp_path / "late.log").exists()
