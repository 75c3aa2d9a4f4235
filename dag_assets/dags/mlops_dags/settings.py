"""Run-time knobs of the DAGs, read from environment variables with production defaults, and the
time limits derived from them.

Tests shorten the polling interval and disable retries through the same variables; on MWAA they
can be set by the startup script. Reading ``os.environ`` at parse time costs nothing.
"""

from __future__ import annotations

import math
import os
from datetime import timedelta
from pathlib import Path

from mlops_core.names import (
    EVALUATION_MAX_RUNTIME_LIMIT_SECONDS,
    SHADOW_BAKE_LIMIT_SECONDS,
    TRAINING_MAX_RUNTIME_LIMIT_SECONDS,
)

# The Airflow connection every AWS client uses. On MWAA ``aws_default`` resolves to the
# environment's execution role; locally boto3's AWS_ENDPOINT_URL points it at a local AWS.
AWS_CONN_ID = os.environ.get("MLOPS_AWS_CONN_ID", "aws_default")

# SageMaker's blue/green update: all traffic shifts at once, then the new fleet bakes while the
# rollback alarms are watched; SageMaker gives up (and rolls back) after MaximumExecutionTimeout.
BLUE_GREEN_BAKE_SECONDS = 600
BLUE_GREEN_MAX_SECONDS = 3 * 3600
# Slack on top of SageMaker's own limits: instance start-up, S3 upload, the triggerer's polling.
WAIT_MARGIN_SECONDS = 3600
# The short tasks of a run (naming, gate, registry, notices, autoscaling, smoke test), all together.
SHORT_TASKS_SECONDS = 3600


def _seconds(variable: str, default: float) -> float:
    return float(os.environ.get(variable, str(default)))


def check_interval_seconds() -> float:
    """Seconds between two status polls of a SageMaker job or endpoint by the triggerer (AWS's
    default use: 30)."""
    return _seconds("MLOPS_CHECK_INTERVAL_SECONDS", 30)


def endpoint_timeout_seconds() -> float:
    """How long a deployment waits for one endpoint change (create, update, rollback, delete):
    at least a blue/green update's longest run, so a wait never gives up while SageMaker still
    works."""
    return _seconds("MLOPS_ENDPOINT_TIMEOUT_SECONDS", BLUE_GREEN_MAX_SECONDS + WAIT_MARGIN_SECONDS)


def lease_poll_seconds() -> float:
    """How often a run waiting for another run of the same model checks whether it has finished.
    Keep it well above a task's start-up and teardown (seconds): a deferral that ends before the
    executor has reported the deferring execution makes Airflow 3.3.1 fail the task."""
    return _seconds("MLOPS_LEASE_POLL_SECONDS", 60)


def capture_settle_seconds() -> float:
    """How far behind the present a drift check's window ends: SageMaker writes captured
    invocations in batches, a few minutes late; records written after their window was checked
    would never be checked."""
    return _seconds("MLOPS_DRIFT_CAPTURE_SETTLE_SECONDS", 300)


def task_retries() -> int:
    return int(os.environ.get("MLOPS_TASK_RETRIES", "1"))


def retry_delay() -> timedelta:
    return timedelta(seconds=_seconds("MLOPS_RETRY_DELAY_SECONDS", 120))


def max_active_runs() -> int:
    """Runs of one DAG in flight at once, all models together. A run waiting on SageMaker holds no
    worker slot (it is deferred to the triggerer, 1,000 waits per triggerer by default), so the
    bound is the triggerers', not the workers'. Runs of one model are serialized by a lease
    (mlops_dags.leases), not by this number."""
    return int(os.environ.get("MLOPS_MAX_ACTIVE_RUNS", "1000"))


def retraining_batch_size() -> int:
    """Training runs one Retraining run starts (a mapped task, below Airflow's max_map_length of
    1,024); more due models are planned by a follow-up Retraining run."""
    return int(os.environ.get("MLOPS_RETRAINING_BATCH_SIZE", "500"))


def job_wait_seconds(max_runtime_seconds: float) -> float:
    """How long to wait for a SageMaker job stopped by SageMaker after ``max_runtime_seconds``."""
    return max_runtime_seconds + WAIT_MARGIN_SECONDS


def waiter_attempts(wait_seconds: float) -> int:
    """Polls a trigger makes to cover ``wait_seconds`` (the provider's default of 60 covers only
    half an hour at its 30 s interval)."""
    return math.ceil(wait_seconds / max(check_interval_seconds(), 0.001)) + 1


# The longest legitimate run of each DAG, whatever the model: training and evaluation at the
# pipeline configuration's upper limits; four endpoint changes (an earlier change finishing, a
# failed endpoint deleted, the update, a rollback). A run of the same model waits for another one
# at most that long (mlops_dags.leases), so the run timeout allows both.
TRAINING_RUN_SECONDS = (
    job_wait_seconds(TRAINING_MAX_RUNTIME_LIMIT_SECONDS)
    + job_wait_seconds(EVALUATION_MAX_RUNTIME_LIMIT_SECONDS)
    + SHORT_TASKS_SECONDS
)


def deployment_run_seconds() -> float:
    # A shadow trial adds two endpoint changes (shadow on, shadow off) and its bake.
    return 6 * endpoint_timeout_seconds() + SHADOW_BAKE_LIMIT_SECONDS + SHORT_TASKS_SECONDS


def training_run_timeout() -> timedelta:
    """Derived from the limits above; MLOPS_TRAINING_RUN_TIMEOUT_SECONDS overrides it (tests time a
    run out with it: a value below the derived one cuts legitimate runs short)."""
    return timedelta(seconds=_seconds("MLOPS_TRAINING_RUN_TIMEOUT_SECONDS", 2 * TRAINING_RUN_SECONDS))


def deployment_run_timeout() -> timedelta:
    return timedelta(seconds=2 * deployment_run_seconds())


def dags_folder() -> Path:
    """The folder this package was loaded from: where ModelPipeline publishes ``pipelines/``.

    Derived from the package's own path rather than ``[core] dags_folder`` so it also holds for
    a versioned DAG bundle checked out elsewhere.
    """
    return Path(__file__).resolve().parent.parent
