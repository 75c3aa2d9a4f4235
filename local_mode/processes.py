"""Every process local mode starts, each in its own process group with its own log file, so a
Ctrl-C or a failure stops all of them (and their children) and can say where the logs are."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ManagedProcess:
    name: str
    process: subprocess.Popen
    log_path: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class ProcessGroup:
    """Starts processes and stops them in reverse order (SIGTERM to the group, then SIGKILL)."""

    log_dir: Path
    processes: list[ManagedProcess] = field(default_factory=list)

    def start(self, name: str, argv: list[str], *, env: dict[str, str], cwd: Path | None = None) -> ManagedProcess:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(  # noqa: S603 - our own commands
                argv,
                env=env,
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own group: stopping it stops its children too
            )
        managed = ManagedProcess(name, process, log_path)
        self.processes.append(managed)
        return managed

    def stop_all(self, grace: float = 15.0) -> None:
        for managed in reversed(self.processes):
            _signal_group(managed.process, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for managed in reversed(self.processes):
            remaining = max(0.1, deadline - time.monotonic())
            try:
                managed.process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                pass
            # Children (gunicorn workers, task runners) may outlive the leader: kill the group.
            _signal_group(managed.process, signal.SIGKILL)
            try:
                managed.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.processes.clear()


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)  # pgid == pid: started with start_new_session
    except (ProcessLookupError, PermissionError):
        pass
