"""Local MWAA: InvokeRestApi forwarded to a (fake) local Airflow REST API."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.integration


class _Airflow(BaseHTTPRequestHandler):
    """Airflow 3's shape: POST /auth/token for a JWT, then /api/v2/... with the bearer token."""

    seen: list[dict] = []

    def _send(self, status, body):
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self):  # noqa: N802 - http.server API
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if self.path == "/auth/token":
            ok = body == {"username": "admin", "password": "secret"}
            return self._send(201 if ok else 401, {"access_token": "jwt-1"} if ok else {"detail": "no"})
        if self.headers.get("Authorization") != "Bearer jwt-1":
            return self._send(401, {"detail": "Not authenticated"})
        self.seen.append({"path": self.path, "body": body})
        if self.path.startswith("/api/v2/dags/unknown/"):
            return self._send(404, {"detail": "DAG with dag_id: 'unknown' not found"})
        return self._send(200, {"dag_run_id": "manual__1", "state": "queued", "conf": body.get("conf")})

    def log_message(self, *args):
        pass


@pytest.fixture
def airflow(aws):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Airflow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Airflow.seen = []
    aws.update_scenario(
        {
            "mwaa": {
                "airflow_url": f"http://127.0.0.1:{server.server_port}/api/v2",
                "auth": "jwt",
                "username": "admin",
                "password": "secret",
            }
        }
    )
    yield _Airflow.seen
    server.shutdown()
    server.server_close()


def test_invoke_rest_api_triggers_through_the_local_airflow(airflow, aws):
    # AWS_DISABLE_HOST_PREFIX_INJECTION (in aws.env) stops boto3 from calling env.127.0.0.1.
    mwaa = boto3.client("mwaa")
    response = mwaa.invoke_rest_api(
        Name="mlops-local",
        Path="/dags/mlops_training_evaluation/dagRuns",
        Method="POST",
        QueryParameters={"x": "1"},
        Body={"logical_date": "2026-11-25T16:00:00Z", "conf": {"project": "proj", "model": "model"}},
    )
    assert response["RestApiStatusCode"] == 200
    assert response["RestApiResponse"]["conf"] == {"project": "proj", "model": "model"}
    assert airflow == [
        {
            "path": "/api/v2/dags/mlops_training_evaluation/dagRuns?x=1",
            "body": {"logical_date": "2026-11-25T16:00:00Z", "conf": {"project": "proj", "model": "model"}},
        }
    ]


def test_airflow_4xx_is_a_rest_api_client_exception(airflow):
    with pytest.raises(ClientError) as error:
        boto3.client("mwaa").invoke_rest_api(Name="mlops-local", Path="/dags/unknown/dagRuns", Method="POST", Body={})
    assert error.value.response["Error"]["Code"] == "RestApiClientException"
    assert error.value.response["RestApiStatusCode"] == 404
    assert "not found" in error.value.response["RestApiResponse"]["detail"]


def test_without_a_configured_airflow_the_environment_is_not_found(aws):
    with pytest.raises(ClientError) as error:
        boto3.client("mwaa").invoke_rest_api(Name="mlops-local", Path="/dags", Method="GET")
    assert error.value.response["Error"]["Code"] == "ResourceNotFoundException"
