#!/bin/sh
# Amazon MWAA runs this on every Airflow component (scheduler, workers, web server) before Airflow
# starts; what it exports reaches the DAG tasks. MwaaEnvironment deploys it from dag_assets/ and
# pins its S3 object version, so a change here rolls out on the next `cdk deploy`.
#
# The DAGs' run-time settings (dag_assets/dags/mlops_dags/settings.py) default to production
# values. Override them for the whole environment here, for example:
#   export MLOPS_TASK_RETRIES=2
#   export MLOPS_MAX_ACTIVE_RUNS=2000

# Every pipeline task polls SageMaker (describe/list calls) and a busy account gets throttled.
# botocore's default "legacy" mode gives up after 5 attempts and fails the task; "standard" mode
# retries throttling and transient errors with jittered exponential backoff.
export AWS_RETRY_MODE=standard
export AWS_MAX_ATTEMPTS=10
