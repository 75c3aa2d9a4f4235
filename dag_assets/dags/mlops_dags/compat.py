"""One import surface for Airflow 3.x (``airflow.sdk``) and 2.11 (``airflow.decorators``), so the
same DAG files run on both MWAA versions."""

from __future__ import annotations

try:  # Airflow 3
    from airflow.sdk import Param, dag, get_current_context, task

    AIRFLOW_3 = True
except ImportError:  # Airflow 2.11
    from airflow.decorators import dag, task
    from airflow.models.param import Param
    from airflow.operators.python import get_current_context

    AIRFLOW_3 = False

# A task raising it fails without retrying: for errors a retry cannot fix (a SageMaker job that
# failed, a rejected package). On 3.x airflow.exceptions' copy is a deprecated alias.
try:
    from airflow.sdk.exceptions import AirflowFailException
except ImportError:
    from airflow.exceptions import AirflowFailException


def trigger_dag_run_operator():
    """TriggerDagRunOperator moved to the standard provider in Airflow 3."""
    try:
        from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
    except ImportError:
        from airflow.operators.trigger_dagrun import TriggerDagRunOperator
    return TriggerDagRunOperator


__all__ = [
    "AIRFLOW_3",
    "AirflowFailException",
    "Param",
    "dag",
    "get_current_context",
    "task",
    "trigger_dag_run_operator",
]
