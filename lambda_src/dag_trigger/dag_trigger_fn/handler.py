"""Lambda entry point: validate, trigger (or read) a DAG run, answer with a structured result.

One function, one alias per platform project (the alias is named after the project), each alias
with its own function URL (auth type AWS_IAM). A project's CI role may invoke only its own
alias's URL, so IAM already refuses project A's role for project B's alias; the handler then binds
every request to the alias's project (a request for another project is refused) and, for a
function URL request, checks that the signed caller (``requestContext.authorizer.iam.userArn``)
is that project's CI role.

Response (data, never an exception):
  success: {"ok": true, "status": 201|200, "dag_id", "dag_run_id", "state", "created", "url", ...}
  failure: {"ok": false, "status": 4xx|5xx, "error": {"code", "message", "field"?}}
A function URL request gets the same document as its JSON body, with ``status`` as HTTP status.
"""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from botocore.config import Config

from dag_trigger_fn.airflow import AirflowApi, AirflowError
from dag_trigger_fn.validation import (
    RequestError,
    StatusRequest,
    TriggerRequest,
    dag_runs_path,
    parse_request,
)
from mlops_core.names import InvalidName, project_of_ci_role, validate_name

ENV_MWAA_ENVIRONMENT = "MWAA_ENVIRONMENT_NAME"
ENV_PLATFORM_ENVIRONMENT = "MLOPS_ENVIRONMENT"  # whose CI roles may call (mlops-<env>-ci-<project>)
logger = Logger(service="mlops-dag-trigger")

# botocore's own retries are off: AirflowApi retries throttling itself, within the Lambda's time.
_BOTO_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=15)


def _run_summary(dag_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "dag_id": dag_id,
        "dag_run_id": body.get("dag_run_id"),
        "state": body.get("state"),
        "logical_date": body.get("logical_date"),
    }


class DagTriggerService:
    def __init__(self, api: AirflowApi, mwaa_client: Any, environment_name: str) -> None:
        self.api = api
        self._mwaa = mwaa_client
        self._environment = environment_name
        self._webserver: tuple[str, str] | None = None

    def handle(self, event: Any, *, project: str) -> dict[str, Any]:
        """``project``: the project this invocation is bound to (the invoked alias's)."""
        try:
            request = parse_request(event)
        except RequestError as exc:
            logger.warning("request rejected", extra={"code": exc.code, "field": exc.field})
            return exc.as_response()
        try:
            if isinstance(request, TriggerRequest):
                if request.conf.project != project:
                    raise RequestError(
                        403,
                        "project_not_allowed",
                        f"conf.project: this function alias serves project {project!r}, not {request.conf.project!r}",
                        "conf.project",
                    )
                result = self._trigger(request)
            else:
                result = self._status(request, project)
        except RequestError as exc:
            logger.warning("request refused", extra={"code": exc.code, "dag_id": request.dag_id})
            return exc.as_response()
        except AirflowError as exc:
            logger.error(
                "airflow call failed",
                extra={"code": exc.code, "rest_status": exc.rest_status, "dag_id": request.dag_id},
            )
            return RequestError(exc.status, exc.code, exc.message).as_response()
        result["url"] = self._run_url(request.dag_id, request.run_id)
        logger.info("done", extra={k: result[k] for k in ("dag_id", "dag_run_id", "state", "status")})
        return result

    def _trigger(self, request: TriggerRequest) -> dict[str, Any]:
        run_id = request.run_id
        body = {
            "dag_run_id": run_id,
            # Airflow 3 requires logical_date; Airflow 2 accepts it (execution_date is deprecated).
            "logical_date": datetime.now(UTC).isoformat(),
            "conf": request.conf.as_json(),
            "note": f"GitLab pipeline {request.pipeline_id}, job {request.job_id}",
        }
        try:
            created = self.api.call("POST", dag_runs_path(request.dag_id), body)
            return {"ok": True, "status": 201, "created": True, **_run_summary(request.dag_id, created.body)}
        except AirflowError as exc:
            if exc.rest_status != 409:
                raise
        # 409: this pipeline/job already started a run. Return it if it is the same request.
        try:
            existing = self.api.call("GET", dag_runs_path(request.dag_id, run_id)).body
        except AirflowError as exc:
            if exc.rest_status == 404:
                raise RequestError(
                    409,
                    "conflict",
                    "Airflow refused the run as a duplicate, but no run with this run id exists (same logical date?)",
                ) from None
            raise
        conf = existing.get("conf") or {}
        wanted = request.conf.as_json()
        if any(conf.get(key) != wanted[key] for key in ("project", "model")):
            raise RequestError(
                409,
                "run_id_taken",
                f"run {run_id} of {request.dag_id} exists for another project/model",
                "job_id",
            )
        return {"ok": True, "status": 200, "created": False, **_run_summary(request.dag_id, existing)}

    def _status(self, request: StatusRequest, project: str) -> dict[str, Any]:
        body = self.api.call("GET", dag_runs_path(request.dag_id, request.dag_run_id)).body
        if (body.get("conf") or {}).get("project") != project:
            # Another project's run reads as no run at all.
            raise RequestError(404, "not_found", f"no run {request.dag_run_id} of {request.dag_id} for {project!r}")
        return {"ok": True, "status": 200, **_run_summary(request.dag_id, body)}

    def _run_url(self, dag_id: str, run_id: str) -> str | None:
        """Link to the run in the Airflow UI; best effort (a trigger never fails for a link)."""
        if self._webserver is None:
            try:
                env = self._mwaa.get_environment(Name=self._environment)["Environment"]
                self._webserver = (env["WebserverUrl"], env.get("AirflowVersion", ""))
            except Exception:  # noqa: BLE001 - any failure only costs the link
                logger.warning("no webserver url", exc_info=False)
                return None
        host, version = self._webserver
        if version.startswith("2."):
            return f"https://{host}/dags/{dag_id}/grid?dag_run_id={run_id}"
        return f"https://{host}/dags/{dag_id}/runs/{run_id}"


_service: DagTriggerService | None = None


class MisconfiguredError(Exception):
    pass


def _build_service() -> DagTriggerService:
    environment = os.environ.get(ENV_MWAA_ENVIRONMENT)
    if not environment:
        raise MisconfiguredError(ENV_MWAA_ENVIRONMENT)
    client = boto3.client("mwaa", config=_BOTO_CONFIG)
    api = AirflowApi(client, environment)
    return DagTriggerService(api, client, environment)


def alias_project(invoked_function_arn: str) -> str | None:
    """The project an invocation is bound to: the alias it invoked (``...:function:<name>:<alias>``).
    The unqualified function, ``$LATEST`` and numbered versions serve no project."""
    parts = (invoked_function_arn or "").split(":")
    if len(parts) != 8 or parts[7].isdigit():  # a version number, not an alias
        return None
    try:
        return validate_name("project", parts[7])
    except InvalidName:
        return None


def _is_function_url_event(event: Any) -> bool:
    return isinstance(event, dict) and event.get("version") == "2.0" and "requestContext" in event


def _url_request(event: dict[str, Any], project: str) -> Any:
    """The JSON document of a function URL request, once its signed caller is the project's CI role."""
    caller = ((event.get("requestContext") or {}).get("authorizer") or {}).get("iam") or {}
    user_arn = str(caller.get("userArn") or "")
    role = user_arn.split("/")[1] if ":assumed-role/" in user_arn and user_arn.count("/") >= 2 else ""
    environment = os.environ.get(ENV_PLATFORM_ENVIRONMENT, "")
    if not environment or project_of_ci_role(environment, role) != project:
        raise RequestError(
            403, "caller_not_allowed", f"{user_arn or 'an unsigned caller'} is not the CI role of project {project!r}"
        )
    if (event.get("requestContext", {}).get("http") or {}).get("method") != "POST":
        raise RequestError(405, "method_not_allowed", "POST a JSON request")
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("utf-8", "replace")
    try:
        return json.loads(body)
    except ValueError:
        raise RequestError(400, "invalid_request", "body: must be a JSON object", "body") from None


def _http(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": result.get("status", 500),
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(result),
    }


@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: Any) -> dict[str, Any]:
    global _service
    url_event = _is_function_url_event(event)
    try:
        project = alias_project(getattr(context, "invoked_function_arn", ""))
        if project is None:
            raise RequestError(403, "alias_required", "invoke the project's alias (its function URL), not the function")
        request = _url_request(event, project) if url_event else event
        if _service is None:
            _service = _build_service()
        _service.api.remaining_seconds = lambda: context.get_remaining_time_in_millis() / 1000
        result = _service.handle(request, project=project)
    except RequestError as exc:
        logger.warning("invocation refused", extra={"code": exc.code})
        result = exc.as_response()
    except MisconfiguredError:
        logger.exception("missing configuration")
        result = RequestError(500, "misconfigured", f"the Lambda has no {ENV_MWAA_ENVIRONMENT}").as_response()
    except Exception:
        # Logged with the stack trace for operators; the caller sees no internals.
        logger.exception("unexpected error")
        result = RequestError(500, "internal_error", "unexpected error; see the function's logs").as_response()
    return _http(result) if url_event else result
