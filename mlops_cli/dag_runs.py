"""``mlops trigger`` / ``mlops status``: DAG runs through the trigger Lambda (never MWAA directly).

Each platform project has its own alias of the trigger function, named after the project, with a
function URL whose auth type is AWS_IAM. The CI role may invoke only its own project's alias; the
request is signed with the job's credentials (SigV4, service ``lambda``) and the function sees the
caller's role. The Lambda validates the request, allow-lists the DAG and derives an idempotent run
id from the pipeline and job ids, so a retried request returns the same run.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

import boto3
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
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


def function_url(function_name: str, project: str) -> str:
    """The URL of the project's alias (MLOPS_TRIGGER_URL overrides the look-up)."""
    if os.environ.get("MLOPS_TRIGGER_URL"):
        return os.environ["MLOPS_TRIGGER_URL"]
    client = boto3.client("lambda", config=_LAMBDA_CONFIG)
    try:
        return client.get_function_url_config(FunctionName=function_name, Qualifier=project)["FunctionUrl"]
    except ClientError as exc:
        error = exc.response["Error"]
        raise CliError(
            f"no function URL for project {project!r} on {function_name}: {error['Code']}: {error.get('Message', '')}"
        ) from None
    except BotoCoreError as exc:
        raise CliError(f"looking up the function URL of {function_name}:{project} failed: {exc}") from None


def _signed_post(url: str, body: bytes) -> requests.Response:
    session = boto3.session.Session()
    credentials = session.get_credentials()
    if credentials is None:
        raise CliError("no AWS credentials to sign the trigger request (is the job's ID token set up?)")
    request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(credentials.get_frozen_credentials(), "lambda", session.region_name or "us-east-1").add_auth(request)
    prepared = request.prepare()
    return requests.post(prepared.url, data=body, headers=dict(prepared.headers), timeout=(10, 75))


def invoke(url: str, payload: dict[str, Any], *, attempts: int = 3) -> dict[str, Any]:
    body = json.dumps(payload).encode()
    for attempt in range(1, attempts + 1):
        try:
            response = _signed_post(url, body)
        except requests.RequestException as exc:
            if attempt == attempts:
                raise CliError(f"calling the trigger at {url} failed: {type(exc).__name__}") from None
            _sleep(2 * attempt)  # the run id makes a repeated request harmless
            continue
        if response.status_code in (429, 502, 503, 504) and attempt < attempts:
            _sleep(2 * attempt)
            continue
        break
    try:
        result = response.json()
    except ValueError:
        raise CliError(f"the trigger answered {response.status_code} with non-JSON: {response.text[:200]!r}") from None
    if "ok" not in result:  # Lambda's own answer, e.g. IAM refused the call before the function ran
        message = result.get("Message") or result.get("message") or response.text[:300]
        code = EXIT_USAGE if response.status_code == 403 else 1
        raise CliError(f"trigger refused ({response.status_code}): {message}", code)
    if not result.get("ok"):
        error = result.get("error", {})
        status = result.get("status", 0)
        code = EXIT_USAGE if status in (400, 403, 413) else 1
        raise CliError(f"trigger refused ({status} {error.get('code')}): {error.get('message')}", code)
    return result


def trigger(url: str, *, dag: str, pipeline_id: int, job_id: int, conf: dict[str, Any]) -> dict[str, Any]:
    return invoke(
        url,
        {"action": "trigger", "dag_id": DAGS[dag], "pipeline_id": pipeline_id, "job_id": job_id, "conf": conf},
    )


def status(url: str, *, dag: str, run_id: str) -> dict[str, Any]:
    return invoke(url, {"action": "status", "dag_id": DAGS[dag], "dag_run_id": run_id})


def wait_for(
    url: str,
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
        result = status(url, dag=dag, run_id=run_id)
        if result.get("state") != last_state:
            report(result)
            last_state = result.get("state")
        if result.get("state") in TERMINAL_STATES:
            return result
        if _clock() + interval > deadline:
            raise CliError(f"DAG run {run_id} still {last_state} after {timeout:.0f} s", EXIT_TIMEOUT)
        _sleep(interval)
