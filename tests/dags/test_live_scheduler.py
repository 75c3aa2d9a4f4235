"""The DAGs on a real Airflow 3 (scheduler with a LocalExecutor of few worker slots, triggerer, DAG
processor, API server: live_airflow.LiveAirflow) against the local AWS: what dag.test(), which runs
every task and trigger inline, cannot show.

- Runs of different models all wait on SageMaker at once, deferred, with more jobs in flight than
  there are worker slots (issue 11 measured at most `parallelism` before).
- Two runs of one model triggered together never overlap and get successive retraining numbers.
- A run that exceeds its dagrun_timeout has its SageMaker job stopped, and the failure is
  notified and counted (the timeout is shortened through MLOPS_TRAINING_RUN_TIMEOUT_SECONDS).

One Airflow for the module: the timed-out run starts first, the others run while it waits.
"""

from __future__ import annotations

import json
import time

import pytest
from harness import PROJECT
from live_airflow import LiveAirflow, peak_in_flight
from mlops_dags.compat import AIRFLOW_3

from mlops_core import names

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(not AIRFLOW_3, reason="local_mode's LocalAirflow runs Airflow 3 (MWAA's newest)"),
]

SLOTS = 2
RUN_TIMEOUT = 180
JOB_SECONDS = 15
WIDE = [f"wide-{i}" for i in range(4)]


def _training_job_started(live, model: str, timeout: float = 120) -> None:
    sm, deadline = live.client("sagemaker"), time.monotonic() + timeout
    while not sm.list_training_jobs(NameContains=names.run_name_prefix(PROJECT, model))["TrainingJobSummaries"]:
        assert time.monotonic() < deadline, f"no training job of {model} after {timeout} s"
        time.sleep(1)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    scenario = {
        "training": {"delay_seconds": JOB_SECONDS, "rules": []},
        "processing": {"delay_seconds": 2, "rules": []},
    }
    settings = {
        "MLOPS_CHECK_INTERVAL_SECONDS": "2",
        # Not shorter: a deferral that ends before the executor has reported the task's first
        # execution (seconds on a loaded machine) makes Airflow 3.3.1's scheduler fail the task
        # ("task state changed externally"). Production polls every 60 s.
        "MLOPS_LEASE_POLL_SECONDS": "10",
        "MLOPS_TRAINING_RUN_TIMEOUT_SECONDS": str(RUN_TIMEOUT),
    }
    with LiveAirflow(
        state_dir=tmp_path_factory.mktemp("live"), scenario=scenario, dag_settings=settings, parallelism=SLOTS
    ) as running:
        for model in ["victim", "serial", *WIDE]:
            running.add_model(model)
        # The run that times out: its training job takes far longer than the run may.
        running.aws.update_scenario({"training": {"delay_seconds": 10 * RUN_TIMEOUT}})
        victim = running.train("victim")
        _training_job_started(running, "victim")
        running.aws.update_scenario({"training": {"delay_seconds": JOB_SECONDS}})
        wide = [running.train(model) for model in WIDE]
        serial = [running.train("serial"), running.train("serial")]
        finished = running.wait(names.DAG_TRAINING, [*wide, *serial], timeout=RUN_TIMEOUT)
        running.results = {"victim": victim, "wide": wide, "serial": serial, "finished": finished}
        yield running


def test_runs_of_different_models_all_wait_on_sagemaker_at_once_without_holding_worker_slots(live):
    for run_id in live.results["wide"]:
        assert live.results["finished"][run_id]["state"] == "success", live.task_states(names.DAG_TRAINING, run_id)
    jobs = live.job_intervals("TrainingJob")
    wide_jobs = [span for name, span in jobs.items() if "--wide-" in name]
    # Four trainings (plus the victim's, and a serial one) in flight with two worker slots.
    assert len(wide_jobs) == len(WIDE) and peak_in_flight(wide_jobs) == len(WIDE)
    assert peak_in_flight(jobs.values()) > SLOTS
    assert max(s.running for s in live.samples) <= SLOTS
    assert max(s.deferred for s in live.samples) > SLOTS


def test_two_runs_of_one_model_triggered_together_never_overlap(live):
    first, second = live.results["serial"]
    finished = live.results["finished"]
    assert finished[first]["state"] == finished[second]["state"] == "success"
    jobs = sorted((span, name) for name, span in live.job_intervals("TrainingJob").items() if "--serial-" in name)
    assert len(jobs) == 2
    (_, first_end), _ = jobs[0]
    (second_start, _), _ = jobs[1]
    assert second_start >= first_end  # the second run started training after the first had finished
    assert [names.RunName.parse(name).retrain for _, name in jobs] == [0, 1]
    waiting = [live.task_log(names.DAG_TRAINING, run_id, "train") for run_id in (first, second)]
    assert sum("waiting for it to finish" in log for log in waiting) == 1


def test_a_timed_out_run_stops_its_sagemaker_job_and_is_notified_and_counted(live):
    victim = live.results["victim"]
    [run] = live.wait(names.DAG_TRAINING, [victim], timeout=RUN_TIMEOUT + 60).values()
    assert run["state"] == "failed"
    model = next(m for m in live.models if m.model == "victim")
    deadline, notes = time.monotonic() + 60, []
    while time.monotonic() < deadline and not notes:
        notes = [n for n in model.sns_messages() if "Run of" in n["subject"]]
    [note] = notes
    assert note["subject"] == f"[mlops-itest] Run of {names.DAG_TRAINING} failed {PROJECT}/victim"
    assert "the run exceeded its dagrun_timeout (timed_out)" in note["message"]
    assert "train (unfinished)" in note["message"]
    [name] = [n for n in live.job_intervals("TrainingJob") if "--victim-" in n]
    statuses = [e["status"] for e in live.aws.events() if e["kind"] == "TrainingJob" and e["name"] == name]
    assert statuses[-1] in ("Stopping", "Stopped"), statuses  # StopTrainingJob, long before its 40 minutes
    metrics = live.client("cloudwatch").list_metrics(
        Namespace=names.PIPELINE_METRICS_NAMESPACE, MetricName=names.PIPELINE_FAILURE_METRIC
    )["Metrics"]
    assert any({"Name": "Dag", "Value": names.DAG_TRAINING} in m["Dimensions"] for m in metrics), json.dumps(metrics)
