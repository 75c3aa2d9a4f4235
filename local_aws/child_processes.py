"""Process bookkeeping shared by the launcher, the local SageMaker's runners and local mode:
reading a child's exit without reaping it, and killing every process left in a session.

A child that is not reaped keeps its pid, and with it its process group and session ids, so
signalling those ids can only reach processes it (or its descendants) started."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def exit_status(pid: int) -> int | None:
    """The child's exit code (negative: killed by that signal) once it has exited, else None. It is
    not reaped (WNOWAIT); a child reaped elsewhere counts as killed."""
    try:
        result = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG)
    except ChildProcessError:
        return -signal.SIGKILL
    if result is None:
        return None
    return result.si_status if result.si_code == os.CLD_EXITED else -result.si_status


def has_exited(pid: int) -> bool:
    """True once the child has exited, without reaping it."""
    return exit_status(pid) is not None


def _session_members(sid: int) -> list[int]:
    """Processes of session ``sid`` that are still running (zombies excluded), read from /proc."""
    members = []
    try:
        entries = os.listdir("/proc")
    except OSError:  # no procfs: nothing more than the leader's own process group can be found
        return members
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp session ...: comm may contain spaces and parentheses.
        state, _ppid, _pgrp, session = stat[stat.rindex(")") + 2 :].split()[:4]
        if int(session) == sid and state not in ("Z", "X"):
            members.append(int(entry))
    return members


def kill_session(sid: int, timeout: float = 5.0) -> None:
    """SIGKILL every process of session ``sid``, again until none is left (a member may fork while
    it is being killed). The caller guarantees that ``sid`` still names its own session: the pid of
    a session leader it started and has not reaped yet."""
    deadline = time.monotonic() + timeout
    try:
        os.killpg(sid, signal.SIGKILL)  # the leader's own group (all that is found without procfs)
    except (ProcessLookupError, PermissionError):
        pass
    while members := _session_members(sid):
        for pid in members:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if time.monotonic() > deadline:
            return
        time.sleep(0.02)
