"""A real local Airflow 3: API server, scheduler, DAG processor and triggerer on SQLite, running the
DAG bundle unmodified from a copy of ``dag_assets/dags`` (plus the ``pipelines/`` configurations, as the
MWAA bundle has them). Its tasks reach the local AWS through boto3's endpoint variables only.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import sqlite3
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_mode.processes import ProcessGroup, StopRequested

REPO = Path(__file__).resolve().parents[1]
AIRFLOW_VERSION = "3.3.1"
DEFAULT_VENV = REPO / ".venvs" / f"airflow-{AIRFLOW_VERSION}"
SOURCE_DAGS = REPO / "dag_assets" / "dags"
FINISHED = {"success", "failed"}


class AirflowError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


CAPTURE_SETTLE_SECONDS = 12


def _write_ahead_log(database: Path) -> None:
    """SQLite's WAL journal (kept in the file): readers no longer block the one writer."""
    with contextlib.closing(sqlite3.connect(database)) as connection:
        connection.execute("PRAGMA journal_mode=WAL")


@dataclass
class LocalAirflow:
    home: Path
    processes: ProcessGroup
    aws_env: dict[str, str]
    venv: Path = DEFAULT_VENV
    port: int = 0
    # Run-time knobs the DAGs read (mlops_dags/settings.py): poll every second, fail fast.
    dag_settings: dict[str, str] | None = None
    # Shared by the API server (which signs task tokens) and the scheduler's task runners.
    jwt_secret: str = field(default_factory=lambda: secrets.token_hex(32))
    # The DAG bundle to run (benchmarks compare another version of it).
    source_dags: Path = SOURCE_DAGS
    # Airflow's log servers default to fixed ports (8793 worker, 8794 triggerer): a second Airflow
    # on the machine (another local mode, the DAG tests' live scheduler) would collide.
    log_server_ports: tuple[int, int] = field(default_factory=lambda: (free_port(), free_port()))

    @property
    def dags_folder(self) -> Path:
        return self.home / "dags"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return self.url + "/api/v2"

    @property
    def logs_folder(self) -> Path:
        return self.home / "logs"

    def prepare(self) -> None:
        """The DAG folder (a copy of the bundle) and the environment; pipeline.json files go in later."""
        if not (self.venv / "bin" / "airflow").exists():
            raise AirflowError(f"no Airflow at {self.venv}: run scripts/airflow_venv.sh {AIRFLOW_VERSION}")
        self.home.mkdir(parents=True, exist_ok=True)
        if self.dags_folder.exists():
            shutil.rmtree(self.dags_folder)
        shutil.copytree(self.source_dags, self.dags_folder, ignore=shutil.ignore_patterns("__pycache__"))
        self.port = self.port or free_port()

    def env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AIRFLOW", "PYTHONPATH"))}
        base.update(self.aws_env)
        base.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "4",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
                # SQLite's lock waits: see local_mode/airflow_sqlite.py.
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "local_mode.airflow_sqlite.CONNECT_ARGS",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC": "local_mode.airflow_sqlite.CONNECT_ARGS_ASYNC",
                # Loopback only, no login: the simple auth manager treats every caller as admin.
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.log_server_ports[0]),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self.log_server_ports[1]),
                # Log links in failure notifications point at this Airflow.
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                "AIRFLOW__API_AUTH__JWT_SECRET": self.jwt_secret,
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.logs_folder),
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "300",
                # On MWAA aws_default resolves to the execution role; here boto3's endpoint
                # variables (aws_env) point it at the local AWS.
                "AIRFLOW_CONN_AWS_DEFAULT": '{"conn_type": "aws"}',
                # mlops_core next to the DAGs, as in the MWAA bundle.
                "PYTHONPATH": os.pathsep.join([str(self.dags_folder), str(REPO)]),
                "MLOPS_CHECK_INTERVAL_SECONDS": "1",
                # One retry, soon: Airflow 3.3.1's scheduler can fail a deferrable task whose trigger
                # fired before the executor reported the deferring attempt ("task state changed
                # externally", apache/airflow#72716, open); with local mode's 1 s polls that happens.
                # The operators are retry-safe (a retry resumes its own job or trial), and a
                # failure is notified once, after the last try. MWAA's default: 1 retry after 120 s.
                "MLOPS_TASK_RETRIES": "1",
                "MLOPS_RETRY_DELAY_SECONDS": "3",
                "MLOPS_ENDPOINT_TIMEOUT_SECONDS": "300",
                "MLOPS_LEASE_POLL_SECONDS": "10",
                # A drift check's window ends this far behind the present: local SageMaker writes a
                # capture batch within 10 s (scenario data_capture.flush_every_seconds), SageMaker
                # within minutes (the DAG's default, 300 s).
                "MLOPS_DRIFT_CAPTURE_SETTLE_SECONDS": str(CAPTURE_SETTLE_SECONDS),
                **(self.dag_settings or {}),
            }
        )
        return base

    @property
    def migrated_template(self) -> Path:
        # Inside the virtualenv: scripts/airflow_venv.sh rebuilds it (and so drops this copy)
        # whenever Airflow or its constraints change.
        return self.venv / "local-mode-migrated-airflow.db"

    def migrate(self) -> str:
        """``airflow db migrate`` once per Airflow virtualenv; later runs copy the migrated
        SQLite file (saves ~15 s of CPU at every start). Says which it did."""
        database = self.home / "airflow.db"
        if self.migrated_template.is_file() and not database.exists():
            shutil.copyfile(self.migrated_template, database)
            _write_ahead_log(database)
            return "copied the migrated database"
        self._migrate()
        _write_ahead_log(database)
        with contextlib.suppress(OSError):
            partial = self.migrated_template.with_suffix(f".{os.getpid()}.partial")
            shutil.copyfile(database, partial)
            partial.replace(self.migrated_template)
        return "airflow db migrate (first run of this Airflow virtualenv)"

    def _migrate(self) -> None:
        airflow = str(self.venv / "bin" / "airflow")
        log = self.processes.log_dir / "airflow-db-migrate.log"
        log.unlink(missing_ok=True)
        # In the process group, so that a stop requested meanwhile stops it too.
        code = self.processes.run("airflow-db-migrate", [airflow, "db", "migrate"], env=self.env(), timeout=600)
        if code != 0:
            raise AirflowError(f"airflow db migrate failed (exit {code}; log: {log})")

    def start(self) -> None:
        airflow = str(self.venv / "bin" / "airflow")
        env = self.env()
        self.processes.start(
            "airflow-api-server", [airflow, "api-server", "--host", "127.0.0.1", "--port", str(self.port)], env=env
        )
        self.processes.start("airflow-scheduler", [airflow, "scheduler"], env=env)
        self.processes.start("airflow-dag-processor", [airflow, "dag-processor"], env=env)
        # The DAGs' SageMaker waits are deferred: the triggerer polls while no worker slot is held.
        self.processes.start("airflow-triggerer", [airflow, "triggerer"], env=env)

    def wait_ready(self, dag_ids: list[str], timeout: float = 180.0) -> None:
        """Until the API answers and every DAG is parsed (and free of import errors)."""
        deadline = time.monotonic() + timeout
        missing = dag_ids
        while time.monotonic() < deadline:
            if self.processes.stop_requested:
                raise StopRequested("stopped while waiting for Airflow")
            for managed in self.processes.processes:
                if managed.name.startswith("airflow-") and not managed.alive():
                    raise AirflowError(f"{managed.name} exited (log: {managed.log_path}):\n{managed.log_tail()}")
            try:
                errors = self.get("/importErrors").get("import_errors", [])
                if errors:
                    raise AirflowError(f"DAG import errors: {errors}")
                found = {d["dag_id"] for d in self.get("/dags", limit=100).get("dags", [])}
                missing = [d for d in dag_ids if d not in found]
                if not missing:
                    return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(1)
        raise AirflowError(
            f"Airflow not ready after {timeout:.0f} s (DAGs missing: {missing}); logs in {self.processes.log_dir}"
        )

    # -- REST API (Airflow 3, /api/v2) --------------------------------------------------------
    def request(self, method: str, path: str, body: Any = None, **query: Any) -> Any:
        url = self.api_url + path
        if query:
            url += "?" + urllib.parse.urlencode(query, doseq=True)
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - loopback Airflow
            url, data=data, method=method, headers={"Content-Type": "application/json", "Accept": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310
            payload = response.read()
        return json.loads(payload) if payload else {}

    def get(self, path: str, **query: Any) -> Any:
        return self.request("GET", path, **query)

    def unpause(self, dag_id: str) -> None:
        self.request("PATCH", f"/dags/{dag_id}", {"is_paused": False})

    def dag_runs(self, dag_id: str) -> list[dict]:
        return self.get(f"/dags/{dag_id}/dagRuns", limit=100, order_by="start_date").get("dag_runs", [])

    def dag_run(self, dag_id: str, run_id: str) -> dict:
        return self.get(f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        path = f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances"
        return self.get(path, limit=100).get("task_instances", [])

    def task_log_dir(self, dag_id: str, run_id: str) -> Path:
        return self.logs_folder / f"dag_id={dag_id}" / f"run_id={run_id}"
