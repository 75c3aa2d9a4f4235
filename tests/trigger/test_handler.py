"""The trigger Lambda against a stubbed MWAA: every path a CI job can hit."""

from __future__ import annotations

import json

import pytest
from botocore.stub import ANY
from dag_trigger_fn import handler as handler_module
from dag_trigger_fn.validation import MAX_CI_ID, MWAA_MAX_PATH, dag_runs_path, run_id_for
from trigger_test_support import ENVIRONMENT, FakeContext

from mlops_core.names import DAG_DEPLOYMENT, DAG_TRAINING, TRIGGERABLE_DAGS

PIPELINE, JOB = 2_164_813_478, 12_345_678_901
RUN_ID = run_id_for(PIPELINE, JOB)
CONF = {"project": "fraud", "model": "scorer", "image_tag": "1.4.0", "retraining": False}


def trigger_event(**overrides):
    event = {
        "action": "trigger",
        "dag_id": DAG_TRAINING,
        "pipeline_id": PIPELINE,
        "job_id": JOB,
        "conf": dict(CONF),
    }
    event.update(overrides)
    return event


def run_body(state="queued", conf=None, run_id=RUN_ID):
    return {
        "dag_id": DAG_TRAINING,
        "dag_run_id": run_id,
        "state": state,
        "logical_date": "2026-11-25T16:00:00+00:00",
        "conf": conf if conf is not None else CONF,
    }


def expect_post(stubber, dag_id=DAG_TRAINING, conf=None):
    stubber.add_response(
        "invoke_rest_api",
        {"RestApiStatusCode": 200, "RestApiResponse": run_body(conf=conf)},
        {
            "Name": ENVIRONMENT,
            "Path": f"/dags/{dag_id}/dagRuns",
            "Method": "POST",
            "Body": {"dag_run_id": RUN_ID, "logical_date": ANY, "conf": conf or CONF, "note": ANY},
        },
    )


def expect_rest_error(stubber, rest_status, body=None, code="RestApiClientException"):
    stubber.add_client_error(
        "invoke_rest_api",
        service_error_code=code,
        http_status_code=400,
        modeled_fields={"RestApiStatusCode": rest_status, "RestApiResponse": body or {"detail": "x"}},
    )


def expect_environment(stubber, version="3.3.1"):
    stubber.add_response(
        "get_environment",
        {
            "Environment": {
                "Name": ENVIRONMENT,
                "WebserverUrl": "abc.airflow.eu-west-1.on.aws",
                "AirflowVersion": version,
            }
        },
        {"Name": ENVIRONMENT},
    )


def test_trigger_creates_run_with_idempotent_id_and_link(service, mwaa):
    _, stubber = mwaa
    expect_post(stubber)
    expect_environment(stubber)

    result = service.handle(trigger_event(), project="fraud")

    assert result["ok"] is True and result["status"] == 201 and result["created"] is True
    assert result["dag_run_id"] == RUN_ID == "gl-zsvgrq-5o6aqt1"
    assert result["state"] == "queued"
    assert result["url"] == f"https://abc.airflow.eu-west-1.on.aws/dags/{DAG_TRAINING}/runs/{RUN_ID}"


def test_logical_date_is_sent_as_utc_iso_timestamp(service, mwaa):
    client, stubber = mwaa
    seen = {}
    client.meta.events.register("provide-client-params.mwaa.InvokeRestApi", lambda params, **_: seen.update(params))
    expect_post(stubber)
    expect_environment(stubber)
    service.handle(trigger_event(), project="fraud")
    assert seen["Body"]["logical_date"].endswith("+00:00")


def test_airflow_2_link_uses_the_grid_view(service, mwaa):
    _, stubber = mwaa
    expect_post(stubber)
    expect_environment(stubber, version="2.11.2")
    assert service.handle(trigger_event(), project="fraud")["url"].endswith(
        f"/dags/{DAG_TRAINING}/grid?dag_run_id={RUN_ID}"
    )


def test_repeated_request_returns_the_existing_run(service, mwaa):
    _, stubber = mwaa
    expect_post(stubber)
    expect_environment(stubber)
    first = service.handle(trigger_event(), project="fraud")
    expect_rest_error(stubber, 409, {"detail": f"DAGRun with DAG ID and run id {RUN_ID} exists"})
    stubber.add_response(
        "invoke_rest_api",
        {"RestApiStatusCode": 200, "RestApiResponse": run_body(state="running")},
        {"Name": ENVIRONMENT, "Path": f"/dags/{DAG_TRAINING}/dagRuns/{RUN_ID}", "Method": "GET"},
    )
    second = service.handle(trigger_event(), project="fraud")
    assert second["ok"] is True and second["status"] == 200 and second["created"] is False
    assert second["dag_run_id"] == first["dag_run_id"] and second["state"] == "running"


def test_run_id_of_another_model_is_a_conflict(service, mwaa):
    _, stubber = mwaa
    expect_rest_error(stubber, 409)
    stubber.add_response(
        "invoke_rest_api",
        {"RestApiStatusCode": 200, "RestApiResponse": run_body(conf={"project": "fraud", "model": "other"})},
    )
    result = service.handle(trigger_event(), project="fraud")
    assert result == {
        "ok": False,
        "status": 409,
        "error": {
            "code": "run_id_taken",
            "field": "job_id",
            "message": f"run {RUN_ID} of {DAG_TRAINING} exists for another project/model",
        },
    }


def test_409_without_the_run_is_a_conflict(service, mwaa):
    _, stubber = mwaa
    expect_rest_error(stubber, 409)
    expect_rest_error(stubber, 404)
    result = service.handle(trigger_event(), project="fraud")
    assert result["status"] == 409 and result["error"]["code"] == "conflict"


def test_deployment_dag_is_triggerable(service, mwaa):
    _, stubber = mwaa
    conf = {"project": "fraud", "model": "scorer", "model_version": "1.4.0+r2"}
    expect_post(stubber, dag_id=DAG_DEPLOYMENT, conf=conf)
    expect_environment(stubber)
    result = service.handle(trigger_event(dag_id=DAG_DEPLOYMENT, conf=conf), project="fraud")
    assert result["status"] == 201 and result["dag_id"] == DAG_DEPLOYMENT


def test_status_reads_the_run(service, mwaa):
    _, stubber = mwaa
    stubber.add_response(
        "invoke_rest_api",
        {"RestApiStatusCode": 200, "RestApiResponse": run_body(state="success")},
        {"Name": ENVIRONMENT, "Path": f"/dags/{DAG_TRAINING}/dagRuns/{RUN_ID}", "Method": "GET"},
    )
    expect_environment(stubber)
    result = service.handle({"action": "status", "dag_id": DAG_TRAINING, "dag_run_id": RUN_ID}, project="fraud")
    assert result["ok"] and result["state"] == "success"


def test_status_of_unknown_run_is_404(service, mwaa):
    _, stubber = mwaa
    expect_rest_error(stubber, 404, {"detail": "DAGRun not found"})
    result = service.handle({"action": "status", "dag_id": DAG_TRAINING, "dag_run_id": "gl-1-2"}, project="fraud")
    assert result == {
        "ok": False,
        "status": 404,
        "error": {"code": "not_found", "message": "Airflow: DAGRun not found"},
    }


def test_throttling_is_retried_with_growing_backoff(service, mwaa, sleeps):
    _, stubber = mwaa
    stubber.add_client_error("invoke_rest_api", "ThrottlingException", http_status_code=429)
    expect_rest_error(stubber, 429)
    stubber.add_client_error("invoke_rest_api", "ThrottlingException", http_status_code=429)
    expect_post(stubber)
    expect_environment(stubber)
    result = service.handle(trigger_event(), project="fraud")
    assert result["status"] == 201
    assert len(sleeps) == 3
    assert all(0 <= s <= cap for s, cap in zip(sleeps, (0.25, 0.5, 1.0), strict=True))


def test_persistent_throttling_gives_up_with_429(service, mwaa, sleeps):
    _, stubber = mwaa
    for _ in range(5):
        stubber.add_client_error("invoke_rest_api", "ThrottlingException", http_status_code=429)
    result = service.handle(trigger_event(), project="fraud")
    assert result["status"] == 429 and result["error"]["code"] == "throttled"
    assert len(sleeps) == 4


def test_no_retry_when_the_lambda_is_out_of_time(mwaa, sleeps):
    client, stubber = mwaa
    api = handler_module.AirflowApi(client, ENVIRONMENT, sleep=sleeps.append, remaining_seconds=lambda: 5.0)
    service = handler_module.DagTriggerService(api, client, ENVIRONMENT)
    stubber.add_client_error("invoke_rest_api", "ThrottlingException", http_status_code=429)
    assert service.handle(trigger_event(), project="fraud")["status"] == 429
    assert sleeps == []


@pytest.mark.parametrize(
    ("error", "rest_status", "status", "code"),
    [
        ("RestApiClientException", 404, 404, "not_found"),
        ("RestApiClientException", 400, 400, "rejected_by_airflow"),
        ("RestApiClientException", 403, 502, "upstream_access_denied"),
        ("RestApiServerException", 500, 502, "upstream_error"),
        ("AccessDeniedException", None, 502, "upstream_access_denied"),
        ("ResourceNotFoundException", None, 502, "environment_not_found"),
        ("ValidationException", None, 502, "upstream_error"),
    ],
)
def test_upstream_errors_are_structured(service, mwaa, error, rest_status, status, code):
    _, stubber = mwaa
    fields = {"RestApiStatusCode": rest_status, "RestApiResponse": {"detail": "Param image_tag invalid"}}
    stubber.add_client_error(
        "invoke_rest_api", error, http_status_code=400, modeled_fields=fields if rest_status else None
    )
    result = service.handle(trigger_event(), project="fraud")
    assert result["ok"] is False and result["status"] == status and result["error"]["code"] == code
    assert "Traceback" not in json.dumps(result)


def test_rejected_conf_passes_airflow_message_through(service, mwaa):
    _, stubber = mwaa
    expect_rest_error(stubber, 400, {"detail": "Invalid input for param image_tag"})
    result = service.handle(trigger_event(), project="fraud")
    assert result["error"]["message"] == "Airflow: Invalid input for param image_tag"


def test_transient_upstream_errors_are_retried(service, mwaa, sleeps):
    _, stubber = mwaa
    expect_rest_error(stubber, 503, code="RestApiServerException")
    expect_post(stubber)
    expect_environment(stubber)
    assert service.handle(trigger_event(), project="fraud")["status"] == 201 and len(sleeps) == 1


def test_link_failure_does_not_fail_the_trigger(service, mwaa):
    _, stubber = mwaa
    expect_post(stubber)
    stubber.add_client_error("get_environment", "AccessDeniedException", http_status_code=403)
    result = service.handle(trigger_event(), project="fraud")
    assert result["status"] == 201 and result["url"] is None


@pytest.mark.parametrize(
    ("event", "status", "field"),
    [
        ({**trigger_event(), "dag_id": "mlops_retraining"}, 403, "dag_id"),
        ({**trigger_event(), "dag_id": "../../variables"}, 403, "dag_id"),
        ({k: v for k, v in trigger_event().items() if k != "job_id"}, 400, "job_id"),
        (trigger_event(job_id="123"), 400, "job_id"),
        (trigger_event(job_id=True), 400, "job_id"),
        (trigger_event(pipeline_id=0), 400, "pipeline_id"),
        (trigger_event(pipeline_id=MAX_CI_ID + 1), 400, "pipeline_id"),
        (trigger_event(conf={"model": "scorer"}), 400, "conf.project"),
        (trigger_event(conf={**CONF, "project": "Fraud; rm -rf /"}), 400, "conf.project"),
        (trigger_event(conf={**CONF, "bad key": 1}), 400, "conf"),
        (trigger_event(conf={**CONF, "blob": "x" * 20_000}), 400, "conf"),
        (trigger_event(conf="project=fraud"), 400, "conf"),
        (trigger_event(extra=1), 400, "extra"),
        ({**trigger_event(), "action": "delete"}, 400, "action"),
        ({k: v for k, v in trigger_event().items() if k != "action"}, 400, "action"),
        ({"action": "status", "dag_id": DAG_TRAINING, "dag_run_id": "../../../config"}, 400, "dag_run_id"),
        (["not", "an", "object"], 400, "event"),
        ({**trigger_event(), "conf": {**CONF, "x": "y" * 70_000}}, 413, "event"),
    ],
)
def test_invalid_requests_get_a_structured_error_and_never_reach_mwaa(service, event, status, field):
    # The Stubber has no responses queued: any MWAA call would raise.
    result = service.handle(event, project="fraud")
    assert result["ok"] is False and result["status"] == status
    assert result["error"]["field"] == field
    assert result["error"]["message"].startswith(f"{field}:")


def test_error_messages_do_not_echo_hostile_input(service):
    hostile = "<script>alert(1)</script>"
    result = service.handle(trigger_event(conf={**CONF, "model": hostile}), project="fraud")
    assert hostile not in json.dumps(result)


def test_every_allowed_dag_and_largest_run_id_fit_the_mwaa_path_limit():
    longest = run_id_for(MAX_CI_ID, MAX_CI_ID)
    for dag_id in TRIGGERABLE_DAGS:
        assert len(dag_runs_path(dag_id, longest)) <= MWAA_MAX_PATH


def test_handler_entry_point_reads_environment_from_env(monkeypatch, mwaa):
    client, stubber = mwaa
    monkeypatch.setenv("MWAA_ENVIRONMENT_NAME", ENVIRONMENT)
    monkeypatch.setattr(handler_module, "_service", None)
    monkeypatch.setattr(handler_module.boto3, "client", lambda *a, **k: client)
    expect_post(stubber)
    expect_environment(stubber)
    result = handler_module.handler(trigger_event(), FakeContext())
    assert result["status"] == 201


def test_handler_without_environment_is_misconfigured(monkeypatch):
    monkeypatch.delenv("MWAA_ENVIRONMENT_NAME", raising=False)
    monkeypatch.setattr(handler_module, "_service", None)
    result = handler_module.handler(trigger_event(), FakeContext())
    assert result["status"] == 500 and result["error"]["code"] == "misconfigured"


def test_unexpected_failure_is_500_without_internals(monkeypatch, caplog, capsys):
    class Exploding:
        api = type("A", (), {})()

        def handle(self, event, *, project):
            raise RuntimeError("secret internals")

    monkeypatch.setattr(handler_module, "_service", Exploding())
    # Powertools keeps the stream it was created with: point it at this test's captured stdout.
    import sys

    monkeypatch.setattr(handler_module.logger.registered_handler, "stream", sys.stdout)
    result = handler_module.handler(trigger_event(), FakeContext())
    assert result == {
        "ok": False,
        "status": 500,
        "error": {"code": "internal_error", "message": "unexpected error; see the function's logs"},
    }
    # Operators get the stack trace in CloudWatch (Powertools writes to stdout, or to the log
    # handlers when another test session configured them).
    assert "secret internals" in caplog.text + capsys.readouterr().out


# ---- one project per alias: the request, the alias and the signed caller must agree -------------


def url_event(body, *, user_arn="arn:aws:sts::111111111111:assumed-role/mlops-dev-ci-fraud/gitlab-1-2", method="POST"):
    """A function URL request (payload format 2.0) as Lambda builds it for an AWS_IAM-signed call."""
    return {
        "version": "2.0",
        "rawPath": "/",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "http": {"method": method, "path": "/"},
            "authorizer": {"iam": {"userArn": user_arn, "accountId": "111111111111", "accessKey": "ASIA..."}},
        },
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def test_a_request_for_another_project_than_the_alias_serves_is_refused(service):
    result = service.handle(trigger_event(conf={**CONF, "project": "malware"}), project="fraud")
    assert result["status"] == 403 and result["error"]["code"] == "project_not_allowed"


def test_another_projects_run_reads_as_not_found(service, mwaa):
    _, stubber = mwaa
    stubber.add_response("invoke_rest_api", {"RestApiStatusCode": 200, "RestApiResponse": run_body()})
    result = service.handle({"action": "status", "dag_id": DAG_TRAINING, "dag_run_id": RUN_ID}, project="malware")
    assert result["status"] == 404


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:lambda:eu-west-1:111111111111:function:mlops-dev-dag-trigger",
        "arn:aws:lambda:eu-west-1:111111111111:function:mlops-dev-dag-trigger:$LATEST",
        "arn:aws:lambda:eu-west-1:111111111111:function:mlops-dev-dag-trigger:7",
    ],
)
def test_only_a_project_alias_serves_requests(monkeypatch, arn):
    monkeypatch.setattr(handler_module, "_service", None)
    result = handler_module.handler(trigger_event(), FakeContext(invoked_function_arn=arn))
    assert result["status"] == 403 and result["error"]["code"] == "alias_required"


def test_a_function_url_request_from_the_projects_ci_role_is_served_as_http(monkeypatch, mwaa):
    client, stubber = mwaa
    monkeypatch.setenv("MWAA_ENVIRONMENT_NAME", ENVIRONMENT)
    monkeypatch.setenv("MLOPS_ENVIRONMENT", "dev")
    monkeypatch.setattr(handler_module, "_service", None)
    monkeypatch.setattr(handler_module.boto3, "client", lambda *a, **k: client)
    expect_post(stubber)
    expect_environment(stubber)
    response = handler_module.handler(url_event(trigger_event()), FakeContext())
    assert response["statusCode"] == 201 and response["headers"]["Content-Type"] == "application/json"
    assert json.loads(response["body"])["dag_run_id"] == RUN_ID


@pytest.mark.parametrize(
    "user_arn",
    [
        "arn:aws:sts::111111111111:assumed-role/mlops-dev-ci-malware/gitlab-1-2",  # another project's CI role
        "arn:aws:sts::111111111111:assumed-role/mlops-prod-ci-fraud/gitlab-1-2",  # another environment's
        "arn:aws:sts::111111111111:assumed-role/admin/alice",
        "arn:aws:iam::111111111111:root",
        "",
    ],
)
def test_a_function_url_request_from_any_other_caller_is_refused(monkeypatch, user_arn):
    monkeypatch.setenv("MLOPS_ENVIRONMENT", "dev")
    monkeypatch.setattr(handler_module, "_service", None)
    response = handler_module.handler(url_event(trigger_event(), user_arn=user_arn), FakeContext())
    assert response["statusCode"] == 403
    assert json.loads(response["body"])["error"]["code"] == "caller_not_allowed"
