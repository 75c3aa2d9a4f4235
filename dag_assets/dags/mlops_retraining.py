"""Airflow DAG mlops_retraining: every day, train each model with retraining enabled again on
current data.

For each model whose pipeline configuration enables retraining, that serves on an endpoint, that has
no Training & Evaluation run in progress, and whose newest run is ``retraining.interval_days`` old
(1 by default; a manual run with ``{"ignore_interval": true}`` retrains them all now), starts the
Training & Evaluation DAG with the image currently serving and ``retraining: true``; the run's
retraining number increments (RunName ``-r<n>-``). The new candidate goes through the same quality
gate and registry as any other.

One run starts at most MLOPS_RETRAINING_BATCH_SIZE trainings (a mapped task stays below Airflow's
max_map_length); when more models are due it starts a follow-up run of this DAG that continues
after the last model it looked at, so any number of models is planned.

The words "Airflow DAG" above also make Airflow's safe-mode file heuristic parse this file.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from mlops_dags import notify, settings
from mlops_dags.compat import dag, task, trigger_dag_run_operator
from mlops_dags.params import retraining_params

from mlops_core.names import DAG_RETRAINING, DAG_TRAINING


@dag(
    dag_id=DAG_RETRAINING,
    description="Daily: start Training & Evaluation for every model with retraining enabled",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=2),
    default_args={
        "retries": settings.task_retries(),
        "retry_delay": settings.retry_delay(),
        "on_failure_callback": notify.on_task_failure,
    },
    on_failure_callback=notify.on_dag_failure,
    params=retraining_params(),
    tags=["mlops", "retraining"],
    doc_md=__doc__,
)
def retraining():
    @task
    def plan(params: dict | None = None) -> dict:
        from mlops_dags import retraining as steps
        from mlops_dags.compat import dag_run_is_active, get_current_context

        context = get_current_context()
        return steps.plan(
            ignore_interval=bool((params or {}).get("ignore_interval")),
            after=(params or {}).get("after"),
            run_is_active=lambda dag_id, run_id: dag_run_is_active(context, dag_id, run_id),
        )

    @task
    def training_confs(planned: dict) -> list[dict]:
        return planned["confs"]

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def more_to_plan(planned: dict, params: dict | None = None) -> dict | None:
        """The follow-up run's conf when more models are due than one run starts, else skip."""
        if not planned["continue_after"]:
            return None
        return {"ignore_interval": bool((params or {}).get("ignore_interval")), "after": planned["continue_after"]}

    # Runs after the triggers: models that could not be planned fail the run (and notify),
    # without having held back the others.
    @task(trigger_rule="all_done")
    def check_planning(planned: dict) -> None:
        if planned["errors"]:
            raise RuntimeError("could not plan the retraining of: " + "; ".join(planned["errors"]))

    planned = plan()
    started = (
        trigger_dag_run_operator()
        .partial(
            task_id="start_training",
            trigger_dag_id=DAG_TRAINING,
            wait_for_completion=False,
        )
        .expand(conf=training_confs(planned))
    )
    follow_up_conf = more_to_plan(planned)
    follow_up = trigger_dag_run_operator()(
        task_id="continue_planning", trigger_dag_id=DAG_RETRAINING, conf=follow_up_conf, wait_for_completion=False
    )
    [started, follow_up] >> check_planning(planned)


retraining()
