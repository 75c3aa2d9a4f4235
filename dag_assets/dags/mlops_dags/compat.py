"""One import surface for Airflow 3.x (``airflow.sdk``) and 2.11 (``airflow.decorators``), so the
same DAG files run on both MWAA versions."""

from __future__ import annotations

try:  # Airflow 3
    from airflow.sdk import BaseOperator, Param, dag, get_current_context, task, task_group

    AIRFLOW_3 = True
except ImportError:  # Airflow 2.11
    from airflow.decorators import dag, task, task_group
    from airflow.models.baseoperator import BaseOperator
    from airflow.models.param import Param
    from airflow.operators.python import get_current_context

    AIRFLOW_3 = False

# A task raising it fails without retrying: for errors a retry cannot fix (a SageMaker job that
# failed, a rejected package). On 3.x airflow.exceptions' copy is a deprecated alias.
try:
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
except ImportError:
    from airflow.exceptions import AirflowFailException, AirflowSkipException


def trigger_dag_run_operator():
    """TriggerDagRunOperator moved to the standard provider in Airflow 3."""
    try:
        from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
    except ImportError:
        from airflow.operators.trigger_dagrun import TriggerDagRunOperator
    return TriggerDagRunOperator


def time_delta_trigger(seconds: float):
    """A trigger that fires after ``seconds`` (Airflow 3 moved it to the standard provider)."""
    from datetime import timedelta

    try:
        from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger
    except ImportError:
        from airflow.triggers.temporal import TimeDeltaTrigger
    return TimeDeltaTrigger(timedelta(seconds=seconds))


ACTIVE_RUN_STATES = ("queued", "running")


def dag_run_is_active(context, dag_id: str, run_id: str) -> bool:
    """Whether that DAG run is queued or running, asked from inside a task: Airflow 3 tasks ask the
    API server (Task SDK), Airflow 2 tasks read the metadata database."""
    if AIRFLOW_3:
        ti = context["ti"]
        return ti.get_dr_count(dag_id=dag_id, run_ids=[run_id], states=list(ACTIVE_RUN_STATES)) > 0
    from airflow.models.dagrun import DagRun

    return any(str(run.state) in ACTIVE_RUN_STATES for run in DagRun.find(dag_id=dag_id, run_id=run_id))


__all__ = [
    "AIRFLOW_3",
    "ACTIVE_RUN_STATES",
    "AirflowFailException",
    "AirflowSkipException",
    "BaseOperator",
    "Param",
    "dag",
    "dag_run_is_active",
    "get_current_context",
    "task",
    "task_group",
    "time_delta_trigger",
    "trigger_dag_run_operator",
]
