"""Lambda entry point: validate, trigger (or read) a DAG run, answer with a structured result.

Response (the Lambda is invoked directly by the CI tool, so it returns data, never raises):
  success: {"ok": true, "status": 201|200, "dag_id", "dag_run_id", "state", "created", "url", ...}
  failure: {"ok": false, "status": 4xx|5xx, "error": {"code", "message", "field"?}}
"""

from __future__ import annotations

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

ENV_MWAA_ENVIRONMENT = "MWAA_ENVIRONMENT_NAME"
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

    def handle(self, event: Any) -> dict[str, Any]:
        try:
            request = parse_request(event)
        except RequestError as exc:
            logger.warning("request rejected", extra={"code": exc.code, "field": exc.field})
            return exc.as_response()
        try:
            if isinstance(request, TriggerRequest):
                result = self._trigger(request)
            else:
                result = self._status(request)
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

    def _status(self, request: StatusRequest) -> dict[str, Any]:
        body = self.api.call("GET", dag_runs_path(request.dag_id, request.dag_run_id)).body
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


@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: Any) -> dict[str, Any]:
    global _service
    try:
        if _service is None:
            _service = _build_service()
        _service.api.remaining_seconds = lambda: context.get_remaining_time_in_millis() / 1000
        return _service.handle(event)
    except MisconfiguredError:
        logger.exception("missing configuration")
        return RequestError(500, "misconfigured", f"the Lambda has no {ENV_MWAA_ENVIRONMENT}").as_response()
    except Exception:
        # Logged with the stack trace for operators; the caller sees no internals.
        logger.exception("unexpected error")
        return RequestError(500, "internal_error", "unexpected error; see the function's logs").as_response()
