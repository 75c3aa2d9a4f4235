"""Lambda entry point: validate, trigger (or read) a DAG run, answer with a structured result.

Two callers: GitLab CI through the project's function URL, and the project's drift topic (SNS),
which delivers a model's drift alarm (``dag_trigger_fn.drift``) to the same alias.

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
from botocore.exceptions import ClientError
from pydantic import ValidationError

from dag_trigger_fn import drift
from dag_trigger_fn.airflow import AirflowApi, AirflowError
from dag_trigger_fn.validation import (
    RequestError,
    RunConf,
    StatusRequest,
    TriggerRequest,
    dag_runs_path,
    parse_request,
)
from mlops_core import names
from mlops_core.names import InvalidName, project_of_ci_role, validate_name

ENV_MWAA_ENVIRONMENT = "MWAA_ENVIRONMENT_NAME"
ENV_PLATFORM_ENVIRONMENT = "MLOPS_ENVIRONMENT"  # whose CI roles may call (mlops-<env>-ci-<project>)
ENV_ARTIFACT_BUCKET = "MLOPS_ARTIFACT_BUCKET"  # where the drift checks' summaries are
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
    def __init__(
        self,
        api: AirflowApi,
        mwaa_client: Any,
        environment_name: str,
        *,
        s3_client: Any = None,
        artifact_bucket: str | None = None,
        platform_environment: str | None = None,
    ) -> None:
        self.api = api
        self._mwaa = mwaa_client
        self._environment = environment_name
        self._webserver: tuple[str, str] | None = None
        self._s3 = s3_client
        self._artifact_bucket = artifact_bucket
        self._platform_environment = platform_environment

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
        return self._start(
            request.dag_id,
            request.conf,
            request.run_id,
            note=f"GitLab pipeline {request.pipeline_id}, job {request.job_id}",
        )

    def _start(self, dag_id: str, conf: RunConf, run_id: str, *, note: str) -> dict[str, Any]:
        body = {
            "dag_run_id": run_id,
            # Airflow 3 requires logical_date; Airflow 2 accepts it (execution_date is deprecated).
            "logical_date": datetime.now(UTC).isoformat(),
            "conf": conf.as_json(),
            "note": note[:1000],
        }
        try:
            created = self.api.call("POST", dag_runs_path(dag_id), body)
            return {"ok": True, "status": 201, "created": True, **_run_summary(dag_id, created.body)}
        except AirflowError as exc:
            if exc.rest_status != 409:
                raise
        # 409: this pipeline/job (or drift check) already started a run. Return it if it is the same request.
        try:
            existing = self.api.call("GET", dag_runs_path(dag_id, run_id)).body
        except AirflowError as exc:
            if exc.rest_status == 404:
                raise RequestError(
                    409,
                    "conflict",
                    "Airflow refused the run as a duplicate, but no run with this run id exists (same logical date?)",
                ) from None
            raise
        existing_conf = existing.get("conf") or {}
        wanted = conf.as_json()
        if any(existing_conf.get(key) != wanted[key] for key in ("project", "model")):
            raise RequestError(
                409,
                "run_id_taken",
                f"run {run_id} of {dag_id} exists for another project/model",
                "job_id",
            )
        return {"ok": True, "status": 200, "created": False, **_run_summary(dag_id, existing)}

    def _status(self, request: StatusRequest, project: str) -> dict[str, Any]:
        body = self.api.call("GET", dag_runs_path(request.dag_id, request.dag_run_id)).body
        if (body.get("conf") or {}).get("project") != project:
            # Another project's run reads as no run at all.
            raise RequestError(404, "not_found", f"no run {request.dag_run_id} of {request.dag_id} for {project!r}")
        return {"ok": True, "status": 200, **_run_summary(request.dag_id, body)}

    def handle_alarm(self, event: dict[str, Any], *, project: str) -> dict[str, Any]:
        """An SNS delivery of a drift alarm: start the drift retraining it calls for, or say why not.

        Refusals and "nothing to do" are answers (logged); a failed Airflow call is raised by the
        caller so Lambda's asynchronous retries deliver the event again (the run id keeps that safe).
        """
        try:
            notifications = drift.alarm_notifications(event)
        except drift.NotAnAlarm as exc:
            logger.warning("sns message refused", extra={"code": "not_an_alarm"})
            return RequestError(400, "not_an_alarm", str(exc)).as_response()
        results = []
        for topic, notification in notifications:
            try:
                results.append(self._drift_alarm(topic, notification, project))
            except RequestError as exc:
                logger.warning("drift alarm refused", extra={"code": exc.code, "alarm": notification.AlarmName})
                results.append(exc.as_response())
        return results[0] if len(results) == 1 else {"ok": all(r["ok"] for r in results), "results": results}

    def _drift_alarm(self, topic: str, alarm: drift.AlarmNotification, project: str) -> dict[str, Any]:
        where = {"alarm": alarm.AlarmName, "topic": topic, "state": alarm.NewStateValue}
        if alarm.NewStateValue != drift.ALARM_STATE:
            logger.info("alarm state change ignored: only ALARM starts a retraining", extra=where)
            return {"ok": True, "status": 200, "action": "ignored", "reason": f"state {alarm.NewStateValue}"}
        dimensions = alarm.dimensions
        model = dimensions.get("Model", "")
        if (
            alarm.Trigger.MetricName != names.DRIFTED_FEATURES_METRIC
            or alarm.Trigger.Namespace != names.MODEL_METRICS_NAMESPACE
            or dimensions.get("Project") != project
            or dimensions.get("Environment") != self._platform_environment
            or alarm.AlarmName != names.drift_alarm_name(self._platform_environment or "", project, model)
        ):
            logger.warning(
                "alarm refused: not a drift alarm of this alias's project",
                extra={**where, "project": project, "dimensions": dimensions},
            )
            return RequestError(
                403,
                "project_not_allowed",
                f"alarm {alarm.AlarmName!r} is not a drift alarm of project {project!r} in this environment",
            ).as_response()
        try:
            validate_name("model", model)
        except InvalidName:
            return RequestError(400, "invalid_request", "alarm dimension Model: not a model name").as_response()
        try:
            summary = drift.read_summary(self._s3, self._artifact_bucket or "", project, model)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            logger.error("drift summary unreadable", extra={**where, "error": code})
            if code in ("NoSuchKey", "AccessDenied", "NoSuchBucket"):
                return RequestError(
                    404, "summary_not_found", f"no readable drift summary of {project}/{model}: {code}"
                ).as_response()
            raise AirflowError(503, "summary_unreadable", f"reading the drift summary failed: {code}") from None
        except ValidationError:
            logger.error("drift summary invalid", extra=where)
            return RequestError(422, "summary_invalid", "the drift summary is not a DriftCheckSummary").as_response()
        if summary.project != project or summary.model != model:
            return RequestError(409, "summary_mismatch", "the drift summary names another model").as_response()
        where |= {"project": project, "model": model, "check": summary.check_name}
        if not summary.conclusive or not summary.drifted:
            why = "inconclusive check" if not summary.conclusive else "no drifted feature"
            logger.info(f"drift alarm without drift to act on: {why}", extra=where)
            return {"ok": True, "status": 200, "action": "ignored", "reason": why, "drift_check": summary.check_name}
        recent = drift.recent_drift_run(self.api, project, model, summary.cool_down_hours)
        run_id = drift.drift_run_id(project, model, summary.check_name)
        if recent is not None and recent.get("dag_run_id") != run_id:
            logger.info("drift retraining in cool-down", extra={**where, "recent_run": recent.get("dag_run_id")})
            return {
                "ok": True,
                "status": 200,
                "action": "cool_down",
                "reason": f"drift retraining {recent.get('dag_run_id')} started within {summary.cool_down_hours} h",
                "drift_check": summary.check_name,
            }
        try:
            conf = RunConf.model_validate(drift.drift_conf(summary))
        except ValidationError as exc:
            first = exc.errors(include_url=False, include_input=False)[0]
            field = ".".join(str(p) for p in first["loc"])
            logger.error("drift summary gives an invalid conf", extra={**where, "field": field})
            return RequestError(400, "invalid_request", f"conf.{field}: {first['msg']}", f"conf.{field}").as_response()
        result = self._start(
            names.DAG_TRAINING,
            conf,
            run_id,
            note=f"drift check {summary.check_name}: {', '.join(summary.drifted_features)}",
        )
        result["action"] = "started" if result["created"] else "already_started"
        result["url"] = self._run_url(names.DAG_TRAINING, run_id)
        logger.info("drift retraining", extra={**where, "dag_run_id": run_id, "run_created": result["created"]})
        return result

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
    return DagTriggerService(
        api,
        client,
        environment,
        s3_client=boto3.client("s3", config=_BOTO_CONFIG),
        artifact_bucket=os.environ.get(ENV_ARTIFACT_BUCKET),
        platform_environment=os.environ.get(ENV_PLATFORM_ENVIRONMENT),
    )


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


class RetryableDelivery(Exception):
    """Raised for an SNS delivery whose run could not be started now: Lambda retries the
    asynchronous invocation (twice, with backoff), and the check's run id keeps a retry safe."""


def _alarm_result(service: DagTriggerService, event: dict[str, Any], project: str) -> dict[str, Any]:
    try:
        return service.handle_alarm(event, project=project)
    except AirflowError as exc:
        logger.error("drift retraining not started", extra={"code": exc.code, "rest_status": exc.rest_status})
        if exc.status >= 500 or exc.status == 429:
            raise RetryableDelivery(f"{exc.code}: {exc.message}") from None
        return RequestError(exc.status, exc.code, exc.message).as_response()


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
        # Only an invocation (SNS's) carries an alarm; a function URL request is always CI's.
        if not url_event and drift.is_sns_event(request):
            return _alarm_result(_service, request, project)
        result = _service.handle(request, project=project)
    except RequestError as exc:
        logger.warning("invocation refused", extra={"code": exc.code})
        result = exc.as_response()
    except RetryableDelivery:
        raise
    except MisconfiguredError:
        logger.exception("missing configuration")
        result = RequestError(500, "misconfigured", f"the Lambda has no {ENV_MWAA_ENVIRONMENT}").as_response()
    except Exception:
        # Logged with the stack trace for operators; the caller sees no internals.
        logger.exception("unexpected error")
        result = RequestError(500, "internal_error", "unexpected error; see the function's logs").as_response()
    return _http(result) if url_event else result
