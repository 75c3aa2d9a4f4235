"""Airflow DAG mlops_deployment: approve a registered model version and serve it on the
model's SageMaker endpoint.

Conf: project, model and either model_version (e.g. 1.4.2+r3) or model_package_arn. The endpoint
is created the first time and updated in place (blue/green with automatic rollback) afterwards;
if anything fails, the previous version keeps serving and the failure is notified. With the
model's deployment strategy "shadow", the candidate first runs beside the serving version as a
shadow variant and is promoted only if it holds up on live traffic (mlops_dags.strategies). Once the
new version serves, the endpoint's monitoring schedule names it (its image and training-data
baseline) for the Drift Check DAG.

Deployments of different models proceed in parallel; a deployment of a model whose endpoint
another run is deploying to waits (resolve_package, deferred) until that run has finished. While the
endpoint changes, the task is deferred to the triggerer and holds no worker slot.

The words "Airflow DAG" above also make Airflow's safe-mode file heuristic parse this file.
"""

from __future__ import annotations

from datetime import datetime

# Airflow's DAG processor imports the airflow modules a DAG file imports once, before it forks a
# parser per file: named here, the provider's SageMaker operators (and boto3) cost a parse nothing.
import airflow.providers.amazon.aws.operators.sagemaker  # noqa: F401
from mlops_dags import notify, settings
from mlops_dags.compat import dag, task
from mlops_dags.operators import (
    CandidateTrialOperator,
    EndpointConfigOperator,
    EndpointDeploymentOperator,
    ModelOperator,
    SmokeTestOperator,
    StartDeploymentOperator,
)
from mlops_dags.params import deployment_params

from mlops_core.names import DAG_DEPLOYMENT


@dag(
    dag_id=DAG_DEPLOYMENT,
    description="Approve a model package and create or update its SageMaker endpoint",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=settings.max_active_runs(),
    dagrun_timeout=settings.deployment_run_timeout(),
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
    def approve_package(release: dict, run_id=None) -> None:
        from mlops_dags import deployment as steps

        steps.approve(release, airflow_run_id=run_id)

    # Runs whatever the deployment's outcome: the variant that serves (new, or the previous one
    # after a rollback) gets its autoscaling registered again.
    @task(trigger_rule="all_done")
    def apply_autoscaling(release: dict | None) -> None:
        from mlops_dags import deployment as steps

        if release is None:  # the package was never resolved: nothing was deployed
            return
        steps.apply_autoscaling(release)

    @task
    def record_lineage(release: dict) -> dict:
        from mlops_dags import lineage

        return lineage.record_deployment(release)

    # The endpoint's drift check follows the model that now serves (its image, its baseline).
    @task
    def record_monitoring_schedule(release: dict) -> dict | None:
        from mlops_dags import drift

        return drift.record_schedule(release)

    @task
    def notify_deployed(release: dict, deployed: dict, smoke: str) -> dict:
        from mlops_dags import deployment as steps

        return steps.notify_deployed(release, deployed, smoke)

    release = StartDeploymentOperator(
        task_id="resolve_package", lease_wait_seconds=settings.deployment_run_seconds()
    ).output
    # deployment.strategy "shadow": the candidate first runs beside production and is judged on
    # live traffic; a rejected candidate skips the rest (mlops_dags.strategies).
    trial = CandidateTrialOperator(task_id="candidate_trial", release=release)
    approved = approve_package(release)
    trial >> approved
    model = ModelOperator(task_id="create_model", release=release)
    endpoint_config = EndpointConfigOperator(task_id="create_endpoint_config", release=release)
    deploy = EndpointDeploymentOperator(task_id="deploy_endpoint", release=release)
    approved >> model >> endpoint_config >> deploy
    scaling = apply_autoscaling(release)
    deploy >> scaling
    # No retry: a failed smoke test already rolled back; a retry would test what the rollback left.
    smoke = SmokeTestOperator(task_id="smoke_test", release=release, deployed=deploy.output, retries=0)
    scaling >> smoke
    notify_deployed(release, deploy.output, smoke.output)
    smoke >> record_lineage(release)
    smoke >> record_monitoring_schedule(release)


deployment()
