"""Airflow DAG mlops_drift_check (Drift Check): every hour, compare each serving model's captured
traffic with its training data's baseline, as SageMaker Model Monitor's data-quality check does.

For each model whose pipeline configuration enables drift checks and whose endpoint has a
monitoring schedule (written by the Deployment DAG), once its window since the last check is
``drift.check_interval_hours`` long: the serving model's image runs its ``monitor`` entry point (a
Model Monitor bring-your-own container) as a SageMaker processing job on the capture objects of the
endpoint's production variants in that window, then the DAG publishes the per-feature distances
(Model Monitor's namespace and metric names) and the number of drifted features (what the model's
drift alarm watches; not published when fewer than ``drift.min_records`` records were captured),
and writes the check's summary beside its reports and as the model's newest. A manual run with
conf ``{"project": ..., "model": ...}`` checks that model now (``project`` alone: its models).

While SageMaker runs a check, its task is deferred to the triggerer and holds no worker slot.

The words "Airflow DAG" above also make Airflow's safe-mode file heuristic parse this file.
"""

from __future__ import annotations

from datetime import datetime, timedelta

# Airflow's DAG processor imports the airflow modules a DAG file imports once, before it forks a
# parser per file: named here, the provider's SageMaker operators (and boto3) cost a parse nothing.
import airflow.providers.amazon.aws.operators.sagemaker  # noqa: F401
from mlops_dags import notify, settings
from mlops_dags.compat import dag, task, task_group
from mlops_dags.operators import DriftCheckJobOperator
from mlops_dags.params import drift_check_params

from mlops_core.names import DAG_DRIFT_CHECK


@dag(
    dag_id=DAG_DRIFT_CHECK,
    description="Hourly: compare each serving model's captured traffic with its training-data baseline",
    schedule="@hourly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=2),
    params=drift_check_params(),
    default_args={
        "retries": settings.task_retries(),
        "retry_delay": settings.retry_delay(),
        "on_failure_callback": notify.on_task_failure,
    },
    on_failure_callback=notify.on_dag_failure,
    tags=["mlops", "drift"],
    doc_md=__doc__,
)
def drift_check():
    @task
    def plan(params: dict | None = None, run_id=None) -> list[dict]:
        from mlops_dags import drift

        return [{**check, "airflow_run_id": run_id} for check in drift.plan(params)]

    @task
    def summarize(check: dict) -> dict:
        from mlops_dags import drift

        return drift.summarize(check)

    # One group per due check: a check whose job fails fails its own group (one notice, from its
    # task) and the run, while the other models' checks carry on.
    @task_group(group_id="drift")
    def check_model(check: dict):
        DriftCheckJobOperator(task_id="check", check=check) >> summarize(check)

    check_model.expand(check=plan())


drift_check()
