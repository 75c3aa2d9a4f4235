"""Airflow DAG mlops_deployment: approve a registered model version and serve it on the
model's SageMaker endpoint.

Conf: project, model and either model_version (e.g. 1.4.2+r3) or model_package_arn. The endpoint
is created the first time and updated in place (blue/green with automatic rollback) afterwards;
if anything fails, the previous version keeps serving and the failure is notified.

The words "Airflow DAG" above also make Airflow's safe-mode file heuristic parse this file.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from mlops_dags import notify, settings
from mlops_dags.compat import dag, task
from mlops_dags.params import deployment_params

from mlops_core.names import DAG_DEPLOYMENT


@dag(
    dag_id=DAG_DEPLOYMENT,
    description="Approve a model package and create or update its SageMaker endpoint",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    # One deployment per model at a time would be ideal; Airflow limits per DAG, so at most one.
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=6),
    params=deployment_params(),
    default_args={
        "retries": settings.task_retries(),
        "retry_delay": settings.retry_delay(),
        "on_failure_callback": notify.on_task_failure,
    },
    on_failure_callback=notify.on_dag_failure,
    tags=["mlops", "deployment"],
    doc_md=__doc__,
)
def deployment():
    @task
    def resolve_package(params=None) -> dict:
        from mlops_dags import deployment as steps

        return steps.resolve_package(params)

    @task
    def approve_package(release: dict, run_id=None) -> None:
        from mlops_dags import deployment as steps

        steps.approve(release, airflow_run_id=run_id)

    @task
    def create_model(release: dict) -> None:
        from mlops_dags import deployment as steps

        steps.create_model_and_config(release)

    @task
    def deploy_endpoint(release: dict) -> dict:
        from mlops_dags import deployment as steps

        return steps.deploy_endpoint(release)

    # Runs whatever the deployment's outcome: the variant that serves (new, or the previous one
    # after a rollback) gets its autoscaling registered again.
    @task(trigger_rule="all_done")
    def apply_autoscaling(release: dict | None) -> None:
        from mlops_dags import deployment as steps

        if release is None:  # the package was never resolved: nothing was deployed
            return
        steps.apply_autoscaling(release)

    @task
    def smoke_test(release: dict, deployed: dict) -> str:
        from mlops_dags import deployment as steps

        return steps.smoke_test(release, deployed)

    @task
    def notify_deployed(release: dict, deployed: dict, smoke: str) -> dict:
        from mlops_dags import deployment as steps

        return steps.notify_deployed(release, deployed, smoke)

    release = resolve_package()
    approved = approve_package(release)
    model = create_model(release)
    deployed = deploy_endpoint(release)
    approved >> model >> deployed
    scaling = apply_autoscaling(release)
    deployed >> scaling
    smoke = smoke_test(release, deployed)
    scaling >> smoke
    notify_deployed(release, deployed, smoke)


deployment()
