"""A real Airflow 3 (API server, scheduler with LocalExecutor, DAG processor, triggerer:
local_mode.airflow.LocalAirflow) running a DAG bundle against the local AWS, for what dag.test()
cannot show: how many SageMaker jobs are in flight at once, how long worker slots are held, run
timeouts, two runs of one model really triggered at once.

Used by test_live_scheduler.py and benchmarks/orchestration_capacity.py. Standard library plus
harness (pydantic through mlops_core), so both the Airflow and the main virtualenv can run it.
"""

from __future__ import annotations

import time
import urllib.error
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from harness import BASE_SCENARIO, PROJECT, ModelFixture, SlackSink, create_model_fixture

from local_aws import LocalAws
from local_mode.airflow import FINISHED, SOURCE_DAGS, LocalAirflow
from local_mode.processes import ProcessGroup
from mlops_core import names

IN_FLIGHT = "InProgress"


@dataclass
class Sample:
    """One look at Airflow: task instances holding a worker slot (state running) and deferred ones."""

    at: float
    running: int
    deferred: int


@dataclass
class LiveAirflow:
    state_dir: Path
    scenario: dict = field(default_factory=lambda: dict(BASE_SCENARIO))
    dag_settings: dict[str, str] = field(default_factory=dict)
    parallelism: int = 4
    source_dags: Path = SOURCE_DAGS
    samples: list[Sample] = field(default_factory=list)
    models: list[ModelFixture] = field(default_factory=list)

    def __enter__(self) -> LiveAirflow:
        self.processes = ProcessGroup(self.state_dir / "logs")
        self.aws = LocalAws(state_dir=self.state_dir / "local-aws", scenario=self.scenario)
        self.slack = SlackSink()
        try:
            self.aws.start()
            self.slack.__enter__()
            import boto3

            self.boto = boto3.session.Session(
                region_name=self.aws.region,
                aws_access_key_id=self.aws.env["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=self.aws.env["AWS_SECRET_ACCESS_KEY"],
            )
            self.airflow = LocalAirflow(
                home=self.state_dir / "airflow",
                processes=self.processes,
                aws_env=dict(self.aws.env),
                source_dags=self.source_dags,
                dag_settings={"AIRFLOW__CORE__PARALLELISM": str(self.parallelism), **self.dag_settings},
            )
            self.airflow.prepare()
            self.airflow.migrate()
            self.airflow.start()
            self.airflow.wait_ready([names.DAG_TRAINING, names.DAG_DEPLOYMENT, names.DAG_RETRAINING], timeout=300)
            for dag_id in (names.DAG_TRAINING, names.DAG_DEPLOYMENT):
                self.airflow.unpause(dag_id)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.processes.stop_all()
        self.slack.__exit__()
        self.aws.stop()

    def client(self, service: str):
        return self.boto.client(service, endpoint_url=self.aws.url)

    def add_model(self, model: str, **overrides) -> ModelFixture:
        """The model's resources in the local AWS and its pipeline.json in the running DAG folder
        (read by the tasks at run time: no reparse needed)."""
        fixture = create_model_fixture(_Boto(self), self.airflow.dags_folder, model, self.slack.url, **overrides)
        self.models.append(fixture)
        return fixture

    def trigger(self, dag_id: str, conf: dict) -> str:
        """A run through the REST API; retried with the same run id when SQLite, busy with the
        scheduler, answers 500 (a run created by an earlier try answers 409)."""
        now = datetime.now(UTC)
        body = {"dag_run_id": f"manual__{now.isoformat()}", "logical_date": now.isoformat(), "conf": conf}
        for attempt in range(5):
            try:
                return self.airflow.request("POST", f"/dags/{dag_id}/dagRuns", body)["dag_run_id"]
            except urllib.error.HTTPError as error:
                if error.code == 409 and attempt:
                    return body["dag_run_id"]
                if error.code < 500 or attempt == 4:
                    raise
                time.sleep(1 + attempt)
        raise AssertionError("unreachable")

    def train(self, model: str, tag: str = "1.0.0") -> str:
        return self.trigger(names.DAG_TRAINING, {"project": PROJECT, "model": model, "image_tag": tag})

    def sample(self) -> Sample:
        states = {}
        for state in ("running", "deferred"):
            found = self.airflow.get("/dags/~/dagRuns/~/taskInstances", state=state, limit=1)
            states[state] = found.get("total_entries", 0)
        sample = Sample(at=time.monotonic(), running=states["running"], deferred=states["deferred"])
        self.samples.append(sample)
        return sample

    def wait(self, dag_id: str, run_ids: list[str], *, timeout: float, every: float = 1.0) -> dict[str, dict]:
        """Sample until every run finished; returns each run as the REST API describes it."""
        deadline = time.monotonic() + timeout
        pending, done = set(run_ids), {}
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(pending)} run(s) of {dag_id} unfinished after {timeout:.0f} s")
            self.sample()
            for run_id in sorted(pending):
                run = self.airflow.dag_run(dag_id, run_id)
                if run.get("state") in FINISHED:
                    done[run_id] = run
                    pending.discard(run_id)
            for managed in self.processes.processes:
                if not managed.alive():
                    raise RuntimeError(f"{managed.name} exited (log {managed.log_path})")
            time.sleep(every)
        return done

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        return {t["task_id"]: t.get("state") for t in self.airflow.task_instances(dag_id, run_id)}

    def task_log(self, dag_id: str, run_id: str, task_id: str) -> str:
        folder = self.airflow.task_log_dir(dag_id, run_id) / f"task_id={task_id}"
        return "\n".join(p.read_text(errors="replace") for p in sorted(folder.rglob("*.log")))

    def job_intervals(self, kind: str = "TrainingJob") -> dict[str, tuple[float, float | None]]:
        """Each SageMaker job's (start, end) in the local AWS's event clock (epoch seconds)."""
        intervals: dict[str, list] = {}
        for event in self.aws.events():
            if event["kind"] != kind:
                continue
            span = intervals.setdefault(event["name"], [None, None])
            if event["status"] == IN_FLIGHT and span[0] is None:
                span[0] = event["time"]
            elif event["status"] in ("Completed", "Failed", "Stopped"):
                span[1] = event["time"]
        return {name: (start, end) for name, (start, end) in intervals.items()}


def peak_in_flight(intervals) -> int:
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals if end is not None])
    level = peak = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    return peak


class _Boto:
    """A boto3 session as harness.create_model_fixture expects, bound to the local AWS."""

    def __init__(self, live: LiveAirflow) -> None:
        self.live = live

    def client(self, service: str):
        return self.live.client(service)
