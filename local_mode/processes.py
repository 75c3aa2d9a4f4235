"""Every process local mode starts, each in its own session with its own log file, so a Ctrl-C or a
failure stops all of them (and their children) and can say where the logs are."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from local_aws.child_processes import exit_status, kill_session


class StopRequested(RuntimeError):
    """A process was to start after ``ProcessGroup.request_stop()``: it is not started."""


@dataclass
class ManagedProcess:
    name: str
    process: subprocess.Popen
    log_path: Path

    def alive(self) -> bool:
        # Never reaps: only ProcessGroup.stop_all does, after killing what is left of the group.
        return self.process.returncode is None and exit_status(self.process.pid) is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class ProcessGroup:
    """Starts processes and stops them in reverse order (SIGTERM to the group, then SIGKILL).

    Thread-safe: once a stop is requested no process starts any more (``start`` raises
    ``StopRequested``), so a thread still booting something cannot leave a process behind."""

    log_dir: Path
    processes: list[ManagedProcess] = field(default_factory=list)  # long-running ones
    finished: list[ManagedProcess] = field(default_factory=list)  # exited one-shot commands, unreaped
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _stopping: bool = False

    def start(self, name: str, argv: list[str], *, env: dict[str, str], cwd: Path | None = None) -> ManagedProcess:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        with self._lock:
            if self._stopping:
                raise StopRequested(f"not starting {name}: every process is being stopped")
            with log_path.open("ab") as log:
                process = subprocess.Popen(  # noqa: S603 - our own commands
                    argv,
                    env=env,
                    cwd=cwd,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # its own session: stopping it stops its children too
                )
            managed = ManagedProcess(name, process, log_path)
            self.processes.append(managed)
        return managed

    def run(
        self, name: str, argv: list[str], *, env: dict[str, str], cwd: Path | None = None, timeout: float = 600
    ) -> int:
        """A command run to completion (its output in ``<name>.log``), stopped like the others if a
        stop is requested meanwhile. Returns its exit code (negative: killed by that signal)."""
        managed = self.start(name, argv, env=env, cwd=cwd)
        deadline = time.monotonic() + timeout
        while (code := exit_status(managed.process.pid)) is None:
            if time.monotonic() > deadline:
                _signal_group(managed.process, signal.SIGKILL)
                raise subprocess.TimeoutExpired(argv, timeout)
            time.sleep(0.1)
        with self._lock:
            if managed in self.processes:  # stop_all may have taken it already
                self.processes.remove(managed)
                self.finished.append(managed)
        return code

    @property
    def stop_requested(self) -> bool:
        with self._lock:
            return self._stopping

    def request_stop(self) -> None:
        """Refuse new processes from now on and SIGTERM every group, without waiting."""
        with self._lock:
            self._stopping = True
            running = list(self.processes)
        for managed in reversed(running):
            _signal_group(managed.process, signal.SIGTERM)

    def stop_all(self, grace: float = 15.0) -> None:
        self.request_stop()
        with self._lock:
            stopping = [*reversed(self.processes), *self.finished]
            self.processes.clear()
            self.finished.clear()
        deadline = time.monotonic() + grace
        for managed in stopping:
            while managed.alive() and time.monotonic() < deadline:
                time.sleep(0.05)
            # Children may outlive the leader, in its group (gunicorn workers) or in groups of their
            # own (Airflow's task processes): kill its whole session. The leader is not reaped yet,
            # so its pid (the session id) cannot have been reused.
            if managed.process.returncode is None:
                kill_session(managed.process.pid)
            try:
                managed.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    if process.returncode is not None:
        return  # reaped: its pid, the group id, may belong to another process by now
    try:
        os.killpg(process.pid, sig)  # pgid == pid: started with start_new_session
    except (ProcessLookupError, PermissionError):
        pass
