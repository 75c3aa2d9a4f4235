"""Start and stop the local AWS as a subprocess: ``with LocalAws() as aws: ...``.

Standard library only, so any Python (the Airflow virtualenvs included) can use it; the server
runs with the main virtualenv's Python, which has moto.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from local_aws import scenario as scenario_module
from local_aws.child_processes import has_exited, kill_session

REPO_ROOT = Path(__file__).resolve().parents[1]
# Variables that would make the server's own boto3 clients (or moto) point somewhere else.
_STRIPPED_ENV_PREFIXES = ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")
# The server's shutdown takes at most its grace period plus a few seconds (SageMakerService.shutdown).
SERVER_STOP_TIMEOUT = 20.0


def default_python() -> str:
    """LOCAL_AWS_PYTHON, else the repository's .venv, else the current interpreter."""
    configured = os.environ.get("LOCAL_AWS_PYTHON")
    if configured:
        return configured
    venv = REPO_ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LocalAwsError(RuntimeError):
    """The local AWS did not start or a control call failed; the message includes the log tail."""


class LocalAws:
    """A local AWS server in a subprocess, on 127.0.0.1 and a free port."""

    def __init__(
        self,
        *,
        state_dir: str | Path | None = None,
        scenario: Mapping[str, Any] | str | Path | None = None,
        python: str | None = None,
        startup_timeout: float = 30.0,
        extra_env: Mapping[str, str] | None = None,
        job_runner: str | None = None,
        endpoint_runner: str | None = None,
        region: str = "us-east-1",
        enforce_iam: bool = True,
    ) -> None:
        self._scenario = scenario_module.load(scenario)  # validated here: typos fail in the test
        self._owns_state_dir = state_dir is None
        self.state_dir = Path(state_dir) if state_dir else None
        self.python = python or default_python()
        self.startup_timeout = startup_timeout
        self.extra_env = dict(extra_env or {})
        self.job_runner = job_runner
        self.endpoint_runner = endpoint_runner
        self.region = region
        self.enforce_iam = enforce_iam
        self.url: str | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> LocalAws:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def log_path(self) -> Path:
        assert self.state_dir is not None, "start() first"
        return self.state_dir / "local_aws.log"

    @property
    def env(self) -> dict[str, str]:
        """Environment for boto3 clients (this process's or a subprocess's) to use this local AWS."""
        assert self.url, "start() first"
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            # boto3 prefixes MWAA hosts with "env."/"api." (env.127.0.0.1 does not resolve).
            "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
        }

    def start(self) -> None:
        if self._process is not None:
            raise LocalAwsError("already started")
        if self.state_dir is None:
            self.state_dir = Path(tempfile.mkdtemp(prefix="local-aws-"))
        self.state_dir.mkdir(parents=True, exist_ok=True)
        url_file = self.state_dir / "url"
        url_file.unlink(missing_ok=True)
        scenario_file = self.state_dir / "scenario.json"
        scenario_file.write_text(json.dumps(self._scenario))
        command = [
            self.python,
            "-m",
            "local_aws",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--state-dir",
            str(self.state_dir),
            "--scenario",
            str(scenario_file),
        ]
        if self.job_runner:
            command += ["--job-runner", self.job_runner]
        if self.endpoint_runner:
            command += ["--endpoint-runner", self.endpoint_runner]
        if not self.enforce_iam:
            command.append("--no-iam")
        env = {k: v for k, v in os.environ.items() if not k.startswith(_STRIPPED_ENV_PREFIXES)}
        env.update(self.extra_env)
        # The repository root first, so `-m local_aws` is this checkout whatever the caller's path.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(REPO_ROOT), env.get("PYTHONPATH"))))
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._process = subprocess.Popen(
            command,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(REPO_ROOT),
            # Its own session: the runners' processes (each in its own process group) stay in it,
            # so stop() finds every one of them even if the server could not stop them itself.
            start_new_session=True,
        )
        try:
            self.url = self._wait_until_healthy(url_file)
        except BaseException:
            self.stop()
            raise

    def _wait_until_healthy(self, url_file: Path) -> str:
        deadline = time.monotonic() + self.startup_timeout
        assert self._process is not None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise LocalAwsError(f"local AWS exited with {self._process.returncode}:\n{self._log_tail()}")
            if url_file.exists():
                url = url_file.read_text().strip()
                try:
                    with urllib.request.urlopen(f"{url}/_local_aws/health", timeout=2) as response:  # noqa: S310
                        if response.status == 200:
                            return url
                except OSError:
                    pass
            time.sleep(0.05)
        raise LocalAwsError(f"local AWS not healthy after {self.startup_timeout}s:\n{self._log_tail()}")

    def stop(self) -> None:
        """SIGTERM the server (it stops every job and endpoint process, ``SageMakerService.shutdown``),
        then SIGKILL whatever is left of its session: also what a hung or SIGKILLed server left."""
        process, self._process = self._process, None
        if process is not None:
            if process.returncode is None:
                if not has_exited(process.pid):
                    process.send_signal(signal.SIGTERM)
                deadline = time.monotonic() + SERVER_STOP_TIMEOUT
                while not has_exited(process.pid) and time.monotonic() < deadline:
                    time.sleep(0.05)
                # Until it is reaped, the server's pid cannot be reused, nor can its session id: every
                # process in that session was started by the server or by its runners.
                kill_session(process.pid)
                process.wait(timeout=10)
            elif not _pid_exists(process.pid):
                # Reaped earlier (it died during start-up). Its session id is still held while any
                # member lives; a live process with that pid would mean the pid was reused.
                kill_session(process.pid)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        self.url = None
        if self._owns_state_dir and self.state_dir is not None:
            shutil.rmtree(self.state_dir, ignore_errors=True)
            self.state_dir = None

    def _log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # -- control API ---------------------------------------------------------------------------
    def _control(self, method: str, path: str, body: Any = None) -> Any:
        assert self.url, "start() first"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - loopback URL of our own server
            f"{self.url}/_local_aws/{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise LocalAwsError(f"{method} {path}: {error.code} {error.read().decode(errors='replace')}") from error

    def scenario(self) -> dict[str, Any]:
        return self._control("GET", "scenario")

    def set_scenario(self, scenario: Mapping[str, Any]) -> dict[str, Any]:
        """Replace the scenario (unspecified keys return to their defaults)."""
        scenario_module.validate(scenario)
        return self._control("PUT", "scenario", dict(scenario))

    def update_scenario(self, patch: Mapping[str, Any]) -> dict[str, Any]:
        """Deep-merge a patch into the live scenario."""
        scenario_module.validate(patch)
        return self._control("PATCH", "scenario", dict(patch))

    def reset(self) -> None:
        """Back to a fresh server: no SageMaker resources, no moto resources, no events, and the
        scenario given at start. Lets one server serve many tests."""
        self._control("POST", "reset", {})

    def authorization(self) -> dict[str, Any]:
        """Every distinct (principal, action, resource) authorized so far and which were denied."""
        return self._control("GET", "authorization")

    def service_credentials(
        self, role_arn: str, service: str, *, source_arn: str | None = None, session_name: str | None = None
    ) -> dict[str, str]:
        """Credentials of ``role_arn`` as ``service`` (e.g. "airflow.amazonaws.com") obtains them;
        refused (LocalAwsError) when the role's trust policy does not allow that service."""
        body = {"role_arn": role_arn, "service": service, "source_arn": source_arn, "session_name": session_name}
        return self._control("POST", "credentials", body)

    def register_function(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Register a function with local Lambda (local_aws.lambda_service): name, handler,
        code_dirs, role_arn, environment, aliases, urls [{qualifier, auth_type}], policy."""
        return self._control("POST", "lambda/functions", dict(spec))

    def env_for(self, credentials: Mapping[str, str]) -> dict[str, str]:
        """``env`` with these credentials instead of the account root's."""
        return {
            **self.env,
            "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": credentials["SessionToken"],
        }

    def events(self) -> list[dict[str, Any]]:
        """Recorded state transitions: [{"time", "kind", "name", "status", "detail"}, ...]."""
        return self._control("GET", "events")
