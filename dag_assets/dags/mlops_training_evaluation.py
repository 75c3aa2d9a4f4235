"""Airflow DAG mlops_training_evaluation (Training & Evaluation): train a model image on
SageMaker, evaluate it, quality-gate it, register it.

Triggered with a conf (validated by the Params below), by CI after an image build, by the
retraining DAG, or by hand. Task logic lives in mlops_dags.training; this file only wires it.

Runs of different models proceed in parallel; a run of a model that already has a run in progress
waits (train, deferred) until that run has finished. While SageMaker trains or evaluates, the
task is deferred to the triggerer and holds no worker slot; the triggerer ends it when the job
completes. Every task start costs a worker slot a second or more, hence few, sizeable tasks.

The words "Airflow DAG" above also make Airflow's safe-mode file heuristic parse this file.
"""

from __future__ import annotations

from datetime import datetime

# Airflow's DAG processor imports the airflow modules a DAG file imports once, before it forks a
# parser per file: named here, the provider's SageMaker operators (and boto3) cost a parse nothing.
import airflow.providers.amazon.aws.operators.sagemaker  # noqa: F401
from mlops_dags import notify, settings
from mlops_dags.compat import dag, task
from mlops_dags.operators import EvaluationJobOperator, TrainingJobOperator
from mlops_dags.params import training_params

from mlops_core.names import DAG_TRAINING


@dag(
    dag_id=DAG_TRAINING,
    description="Train, evaluate, quality-gate and register a model candidate on SageMaker",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=settings.max_active_runs(),
    dagrun_timeout=settings.training_run_timeout(),
    params=training_params(),
    default_args={
        "retries": settings.task_retries(),
        "retry_delay": settings.retry_delay(),
        "on_failure_callback": notify.on_task_failure,
    },
    on_failure_callback=notify.on_dag_failure,
    tags=["mlops", "training"],
    doc_md=__doc__,
)
def training_evaluation():
    @task(multiple_outputs=True)
    def quality_gate(run: dict) -> dict:
        from mlops_dags import training

        return training.quality_gate(run)

    @task
    def publish_metrics(run: dict, evaluation: dict) -> None:
        from mlops_dags import training

        training.publish_metrics(run, evaluation)

    @task
    def register(run: dict, evaluation: dict, production: dict, verdict: dict) -> dict:
        from mlops_dags import training

        return training.register(run, evaluation, production, verdict)

    @task
    def record_lineage(run: dict, package: dict) -> dict:
        from mlops_dags import lineage

        return lineage.record_training(run, package)

    @task
    def notify_result(run: dict, evaluation: dict, production: dict, verdict: dict, package: dict) -> dict:
        from mlops_dags import training

        return training.notify_result(run, evaluation, production, verdict, package)

    # train takes the model's lease, names the run (its return value) and trains. What the jobs
    # produce is where the run names it (run["model_artifact"], run["evaluation_file"]).
    run = TrainingJobOperator(task_id="train", lease_wait_seconds=settings.TRAINING_RUN_SECONDS).output
    evaluated = EvaluationJobOperator(task_id="evaluate", pipeline_run=run)
    gate = quality_gate(run)
    evaluated >> gate
    publish_metrics(run, gate["evaluation"])
    package = register(run, gate["evaluation"], gate["production"], gate["verdict"])
    notify_result(run, gate["evaluation"], gate["production"], gate["verdict"], package)
    record_lineage(run, package)


training_evaluation()
