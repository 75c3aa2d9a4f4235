"""The DAG-level failure callback on the context each Airflow version hands it, without AWS.

Airflow 2.11 passes the template context of the run's *last* task instance plus "reason", with the
ORM DagRun; Airflow 3 passes the context of the task instance that failed the run (a
RuntimeTaskInstance, state unset) with a DagRun data model, or only dag/run_id/reason when no task
instance is relevant (e.g. a run timeout). Neither passes the failed task's exception, which the
task-level notice carries: a run failed by a task gets that one notice, not a second one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from urllib.parse import quote

import pytest
from mlops_dags import notify
from mlops_dags.compat import AIRFLOW_3

DAG_ID = "mlops_training_evaluation"
RUN_ID = "manual__2026-01-02T03:04:05+00:00"
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
AUDIENCE = notify.Audience(environment="itest", topic_arns=("arn:aws:sns:us-east-1:1:t",), slack_secret_names=("s",))


def ti(task_id, *, state=None, end=None, map_index=-1, log_url="auto"):
    fields = {"task_id": task_id, "dag_id": DAG_ID, "run_id": RUN_ID, "map_index": map_index, "end_date": end}
    if state is not None:
        fields["state"] = state
    if log_url:
        fields["log_url"] = f"http://airflow/log/{task_id}" if log_url == "auto" else log_url
    return SimpleNamespace(**fields)


class OrmDagRun:
    """Airflow 2.11's DagRun as far as the callback uses it."""

    dag_id = DAG_ID
    run_id = RUN_ID

    def __init__(self, tis):
        self.tis = tis

    def get_task_instances(self, state=None, session=None):
        return [t for t in self.tis if state is None or t.state == state]


@pytest.fixture
def metrics(monkeypatch):
    counted = []
    monkeypatch.setattr(notify, "_put_failure_metric", lambda environment, dag_id: counted.append(dag_id))
    return counted


@pytest.fixture
def sent(monkeypatch, metrics):
    notes = []
    monkeypatch.setattr(notify, "_audience_for_context", lambda context: (AUDIENCE, "itest/scorer"))
    monkeypatch.setattr(notify, "send", lambda audience, note: notes.append(note) or {})
    return notes


def test_a_run_failed_by_a_task_sends_no_second_notice_on_either_context(sent, metrics):
    # One failure, one notice per channel: the failed task's own callback sent it (with its error
    # and log) and counted it.
    tis = [ti("train", state="failed", end=T0), ti("notify_result", state="upstream_failed")]
    notify.on_dag_failure({"dag_run": OrmDagRun(tis), "ti": tis[-1], "reason": "task_failure"})  # Airflow 2.11
    failed = ti("train")
    dag_run = SimpleNamespace(dag_id=DAG_ID, run_id=RUN_ID)
    notify.on_dag_failure({"dag_run": dag_run, "ti": failed, "reason": "task_failure"})  # Airflow 3
    assert sent == [] and metrics == []


def test_airflow_2_context_of_a_timed_out_run_lists_failed_tasks_first_failure_first_with_its_log(sent, metrics):
    tis = [
        ti("prepare_run", state="success", end=T0),
        ti("publish_metrics", state="failed", end=T0 + timedelta(minutes=9)),
        ti("train", state="failed", end=T0 + timedelta(minutes=5)),
        ti("notify_result", state="upstream_failed"),
    ]
    notify.on_dag_failure({"dag_run": OrmDagRun(tis), "ti": tis[-1], "reason": "timed_out"})
    [note] = sent
    assert note.subject == f"[mlops-itest] Run of {DAG_ID} failed itest/scorer"
    assert "Failed tasks: train, publish_metrics" in note.text
    assert "Error:        the run exceeded its dagrun_timeout (timed_out)" in note.text
    assert "Log:          http://airflow/log/train" in note.text
    assert "Run:          http://" in note.text and quote(RUN_ID) in note.text
    assert metrics == [DAG_ID]  # counted once, here: no task callback counted it


def test_a_task_instance_that_did_not_fail_is_not_named_as_failed(sent):
    # A deadlock: the context's task instance is the one that could not run, not a failed one.
    blocked = ti("register", state="scheduled")
    notify.on_dag_failure(
        {"dag_run": SimpleNamespace(dag_id=DAG_ID, run_id=RUN_ID), "ti": blocked, "reason": "all_tasks_deadlocked"}
    )
    assert "Failed tasks: none recorded" in sent[0].text


def test_a_timed_out_run_names_the_task_it_was_still_in(sent):
    # Airflow 3 hands the run's last unfinished task instance, which the timeout has just skipped.
    waiting = ti("train", state="skipped", log_url="http://airflow/log/train")
    notify.on_dag_failure(
        {"dag_run": SimpleNamespace(dag_id=DAG_ID, run_id=RUN_ID), "ti": waiting, "reason": "timed_out"}
    )
    assert "Failed tasks: train (unfinished)" in sent[0].text
    assert "Log:          http://airflow/log/train" in sent[0].text


def test_minimal_context_of_a_timed_out_run_links_the_run(sent):
    notify.on_dag_failure({"dag": SimpleNamespace(dag_id=DAG_ID), "run_id": RUN_ID, "reason": "timed_out"})
    [note] = sent
    assert f"The run {RUN_ID} of DAG {DAG_ID} failed" in note.text
    assert "Failed tasks: none recorded" in note.text
    assert "Error:        the run exceeded its dagrun_timeout (timed_out)" in note.text
    assert "Log:          n/a" in note.text
    run_url = notify.dag_run_url(DAG_ID, RUN_ID)
    assert f"Run:          {run_url}" in note.text
    if AIRFLOW_3:
        assert run_url.endswith(f"/dags/{DAG_ID}/runs/{quote(RUN_ID)}")
    else:
        assert run_url.endswith(f"/dags/{DAG_ID}/grid?dag_run_id={quote(RUN_ID)}")
    [actions] = [b for b in note.blocks if b["type"] == "actions"]
    assert [(e["text"]["text"], e["url"]) for e in actions["elements"]] == [("Open run", run_url)]


def test_an_exception_in_the_context_is_the_error(sent):
    context = {"dag_run": OrmDagRun([]), "reason": "timed_out", "exception": ValueError("bad conf: model")}
    notify.on_dag_failure(context)
    assert "Error:        ValueError: bad conf: model" in sent[0].text


@pytest.mark.skipif(not AIRFLOW_3, reason="the Task SDK's GetTaskStates is Airflow 3's")
def test_airflow_3_names_the_other_failed_tasks_when_the_task_sdk_answers(sent, monkeypatch):
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    def get_task_states(dag_id, run_ids, **_):
        assert (dag_id, run_ids) == (DAG_ID, [RUN_ID])
        return {RUN_ID: {"train": "failed", "publish_metrics": "failed", "register": "upstream_failed"}}

    monkeypatch.setattr(RuntimeTaskInstance, "get_task_states", staticmethod(get_task_states))
    notify.on_dag_failure({"dag_run": SimpleNamespace(dag_id=DAG_ID, run_id=RUN_ID), "reason": "timed_out"})
    assert "Failed tasks: publish_metrics, train" in sent[0].text


def test_the_callback_never_raises(monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("SNS and Slack both down")

    monkeypatch.setattr(notify, "_audience_for_context", lambda context: (AUDIENCE, None))
    monkeypatch.setattr(notify, "send", broken)
    notify.on_dag_failure({"dag_run": OrmDagRun([ti("train", state="failed")]), "reason": "timed_out"})
    notify.on_dag_failure({})  # nothing usable at all
    assert "DAG failure notification could not be prepared" in caplog.text
