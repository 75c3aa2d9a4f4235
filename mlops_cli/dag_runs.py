"""``mlops trigger`` / ``mlops status``: DAG runs through the trigger Lambda (never MWAA directly).

The CI role may only invoke that Lambda; the Lambda validates the request, allow-lists the DAG
and derives an idempotent run id from the pipeline and job ids.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from mlops_cli.errors import EXIT_TIMEOUT, EXIT_USAGE, CliError
from mlops_core.names import DAG_DEPLOYMENT, DAG_TRAINING
from mlops_core.platform_names import PlatformNames

# Module-level so tests can replace the passage of time without touching the time module.
_sleep = time.sleep
_clock = time.monotonic

DAGS = {"training": DAG_TRAINING, "deployment": DAG_DEPLOYMENT}
TERMINAL_STATES = {"success": 0, "failed": 1}
# Above the Lambda's own 60 s timeout, so a slow MWAA answer is not cut off by the client.
_LAMBDA_CONFIG = Config(read_timeout=75, connect_timeout=10, retries={"mode": "standard", "max_attempts": 3})


def trigger_function_name(environment: str | None, function_name: str | None) -> str:
    if function_name:
        return function_name
    if not environment:
        raise CliError("give --environment (or MLOPS_ENVIRONMENT) or --function-name", EXIT_USAGE)
    session = boto3.session.Session()
    try:
        account = boto3.client("sts").get_caller_identity()["Account"]
        return PlatformNames(
            environment=environment, account=account, region=session.region_name or ""
        ).trigger_function
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    except (ClientError, BotoCoreError) as exc:
        raise CliError(f"no AWS identity to find the trigger function: {exc}") from None


def invoke(function_name: str, payload: dict[str, Any]) -> dict[str, Any]:
    client = boto3.client("lambda", config=_LAMBDA_CONFIG)
    try:
        response = client.invoke(
            FunctionName=function_name, InvocationType="RequestResponse", Payload=json.dumps(payload).encode()
        )
    except ClientError as exc:
        error = exc.response["Error"]
        raise CliError(f"invoking {function_name} failed: {error['Code']}: {error.get('Message', '')}") from None
    except BotoCoreError as exc:
        raise CliError(f"invoking {function_name} failed: {exc}") from None
    body = response["Payload"].read()
    if response.get("FunctionError"):
        raise CliError(f"{function_name} crashed ({response['FunctionError']}): {body[:500]!r}")
    try:
        result = json.loads(body)
    except ValueError:
        raise CliError(f"{function_name} answered with non-JSON: {body[:200]!r}") from None
    if not result.get("ok"):
        error = result.get("error", {})
        status = result.get("status", 0)
        code = EXIT_USAGE if status in (400, 403, 413) else 1
        raise CliError(f"trigger refused ({status} {error.get('code')}): {error.get('message')}", code)
    return result


def trigger(function_name: str, *, dag: str, pipeline_id: int, job_id: int, conf: dict[str, Any]) -> dict[str, Any]:
    return invoke(
        function_name,
        {"action": "trigger", "dag_id": DAGS[dag], "pipeline_id": pipeline_id, "job_id": job_id, "conf": conf},
    )


def status(function_name: str, *, dag: str, run_id: str) -> dict[str, Any]:
    return invoke(function_name, {"action": "status", "dag_id": DAGS[dag], "dag_run_id": run_id})


def wait_for(
    function_name: str,
    *,
    dag: str,
    run_id: str,
    timeout: float,
    interval: float,
    report: Callable[[dict[str, Any]], None],
) -> dict[str, Any]:
    deadline = _clock() + timeout
    last_state = None
    while True:
        result = status(function_name, dag=dag, run_id=run_id)
        if result.get("state") != last_state:
            report(result)
            last_state = result.get("state")
        if result.get("state") in TERMINAL_STATES:
            return result
        if _clock() + interval > deadline:
            raise CliError(f"DAG run {run_id} still {last_state} after {timeout:.0f} s", EXIT_TIMEOUT)
        _sleep(interval)
