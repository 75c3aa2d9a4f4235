"""Run-time knobs of the DAGs, read from environment variables with production defaults.

Tests shorten the polling interval and disable retries through the same variables; on MWAA they
can be set by the startup script. Reading ``os.environ`` at parse time costs nothing.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

# The Airflow connection every AWS client uses. On MWAA ``aws_default`` resolves to the
# environment's execution role; locally boto3's AWS_ENDPOINT_URL points it at a local AWS.
AWS_CONN_ID = os.environ.get("MLOPS_AWS_CONN_ID", "aws_default")


def check_interval_seconds() -> float:
    """Seconds between two status polls of a SageMaker job or endpoint (AWS default use: 30)."""
    return float(os.environ.get("MLOPS_CHECK_INTERVAL_SECONDS", "30"))


def endpoint_timeout_seconds() -> float:
    """How long a deployment waits for an endpoint to leave Creating/Updating."""
    return float(os.environ.get("MLOPS_ENDPOINT_TIMEOUT_SECONDS", str(2 * 3600)))


def task_retries() -> int:
    return int(os.environ.get("MLOPS_TASK_RETRIES", "1"))


def retry_delay() -> timedelta:
    return timedelta(seconds=float(os.environ.get("MLOPS_RETRY_DELAY_SECONDS", "120")))


def dags_folder() -> Path:
    """The folder this package was loaded from: where ModelPipeline publishes ``pipelines/``.

    Derived from the package's own path rather than ``[core] dags_folder`` so it also holds for
    a versioned DAG bundle checked out elsewhere.
    """
    return Path(__file__).resolve().parent.parent
