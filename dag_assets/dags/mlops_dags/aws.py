"""AWS clients and status polling for the DAG tasks.

Clients come from the Amazon provider's AwsBaseHook, so the Airflow connection (on MWAA: the
execution role) decides credentials and region, and boto3's standard AWS_ENDPOINT_URL variables
can point everything at a local AWS in tests. Imports stay inside functions: DAG parsing must not
pay for boto3.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from mlops_dags import settings

log = logging.getLogger(__name__)


def client(service: str, *, max_attempts: int = 5):
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
    from botocore.config import Config

    # Standard retry mode retries throttling and transient errors with backoff.
    config = Config(retries={"max_attempts": max_attempts, "mode": "standard"})
    return AwsBaseHook(aws_conn_id=settings.AWS_CONN_ID, client_type=service, config=config).get_conn()


def error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None) or {}
    return response.get("Error", {}).get("Code")


def is_not_found(exc: BaseException) -> bool:
    """SageMaker answers a missing resource with ValidationException ("Could not find ...")."""
    code = error_code(exc)
    message = str(exc)
    return code in {"ResourceNotFound", "ResourceNotFoundException", "NoSuchKey", "404"} or (
        code in {"ValidationException", "ValidationError"}
        and ("Could not find" in message or "does not exist" in message)
    )


def is_already_exists(exc: BaseException) -> bool:
    code = error_code(exc)
    message = str(exc)
    return code in {"ResourceInUse", "ConflictException"} or (
        code in {"ValidationException", "ValidationError"}
        and ("already existing" in message or "already exists" in message)
    )


class WaitFailed(Exception):
    """The resource reached a failure state; the message says which and why."""


def wait_for_status(
    describe: Callable[[], dict],
    *,
    status_key: str,
    success: Iterable[str],
    failure: Iterable[str],
    what: str,
    timeout_seconds: float,
    interval_seconds: float | None = None,
) -> dict:
    """Poll ``describe`` until ``status_key`` reaches a success or failure state.

    Returns the last description on success; raises WaitFailed (with FailureReason) on a failure
    state and TimeoutError when the resource stays in progress longer than ``timeout_seconds``.
    """
    interval = settings.check_interval_seconds() if interval_seconds is None else interval_seconds
    success, failure = set(success), set(failure)
    deadline = time.monotonic() + timeout_seconds
    last_status = None
    while True:
        description = describe()
        status = description[status_key]
        if status != last_status:
            log.info("%s: %s", what, status)
            last_status = status
        if status in success:
            return description
        if status in failure:
            reason = description.get("FailureReason") or "no FailureReason given"
            raise WaitFailed(f"{what} ended {status}: {reason}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} still {status} after {timeout_seconds:.0f} s")
        time.sleep(interval)


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"{uri!r} is not an s3:// URI")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def read_s3_json(s3, uri: str):
    import json

    bucket, key = split_s3_uri(uri)
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def region_of(boto_client) -> str:
    return boto_client.meta.region_name
