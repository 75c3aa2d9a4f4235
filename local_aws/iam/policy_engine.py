"""AWS's policy evaluation logic, from a long-lived Node process running ``engine.mjs``
(@cloud-copilot/iam-simulate, pinned in package.json).

One simulation is one (principal, action, resource, context) question with the policies that apply
to it; the answer is ``Allowed``, ``ImplicitlyDenied`` or ``ExplicitlyDenied`` and, when denied,
which kind of policy denied it. A simulation the engine cannot run (an unknown action, a resource
ARN of the wrong type for the action, an invalid policy) is an ``Error``: the caller treats it as a
denial, as AWS would refuse the request.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
ENGINE = Path(__file__).with_name("engine.mjs")


class PolicyEngineUnavailable(RuntimeError):
    """Node or the pinned iam-simulate package is missing (run scripts/bootstrap.sh)."""


@dataclass(frozen=True)
class Verdict:
    result: str  # Allowed | ImplicitlyDenied | ExplicitlyDenied | Error
    denials: tuple[dict[str, str], ...] = ()
    errors: dict[str, Any] = field(default_factory=dict)

    @property
    def allowed(self) -> bool:
        return self.result == "Allowed"


def node_binary() -> str:
    """The project's pinned Node (npm package ``node``), else the one on PATH."""
    pinned = REPO / "node_modules" / ".bin" / "node"
    if pinned.exists():
        return str(pinned)
    found = shutil.which("node")
    if not found:
        raise PolicyEngineUnavailable("Node.js not found: run scripts/bootstrap.sh (npm ci installs it)")
    return found


class PolicyEngine:
    """Thread-safe client of one engine process, started on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self._next_id = 0

    def _start(self) -> subprocess.Popen[str]:
        if not (REPO / "node_modules" / "@cloud-copilot" / "iam-simulate").is_dir():
            raise PolicyEngineUnavailable(
                "node_modules/@cloud-copilot/iam-simulate is missing: run scripts/bootstrap.sh (npm ci)"
            )
        return subprocess.Popen(  # noqa: S603 - our own script with the pinned Node
            [node_binary(), str(ENGINE)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,  # the engine's own failures go to the server log
            text=True,
            bufsize=1,
            cwd=REPO,
            env={**os.environ, "NODE_NO_WARNINGS": "1"},
        )

    def evaluate(self, simulation: dict[str, Any]) -> Verdict:
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._process = self._start()
            self._next_id += 1
            request_id = self._next_id
            assert self._process.stdin and self._process.stdout
            self._process.stdin.write(json.dumps({"id": request_id, "simulation": simulation}) + "\n")
            self._process.stdin.flush()
            line = self._process.stdout.readline()
        if not line:
            raise PolicyEngineUnavailable("the policy engine exited; see the local AWS log")
        answer = json.loads(line)
        if answer.get("id") != request_id:
            raise PolicyEngineUnavailable(f"policy engine answered request {answer.get('id')}, not {request_id}")
        return Verdict(
            result=answer["result"],
            denials=tuple(answer.get("denials") or ()),
            errors=answer.get("errors") or {},
        )

    def close(self) -> None:
        with self._lock:
            process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.stdin.close() if process.stdin else None
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
