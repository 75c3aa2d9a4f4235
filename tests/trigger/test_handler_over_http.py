"""The handler's real boto3 client against a local HTTP endpoint speaking MWAA's InvokeRestApi
wire protocol (REST-JSON; Airflow 4xx as a RestApiClientException). Checks what the Stubber tests
assume about botocore: modelled error fields arrive at the top of the error response, and the
endpoint comes from AWS_ENDPOINT_URL_MWAA with host-prefix injection disabled by configuration."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from dag_trigger_fn import handler as handler_module
from trigger_test_support import FakeContext

from mlops_core.names import DAG_TRAINING

pytestmark = pytest.mark.integration


class MwaaWire:
    def __init__(self):
        self.runs = {}
        self.requests = []
        wire = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                wire.requests.append((self.path, self.headers.get("Host"), body))
                if not self.path.startswith("/restapi/mlops-dev"):
                    return self._send(404, {"Message": "no such environment"}, "ResourceNotFoundException")
                dag_id, run_id = body["Path"].split("/")[2], (body.get("Body") or {}).get("dag_run_id")
                if body["Method"] == "POST":
                    if (dag_id, run_id) in wire.runs:
                        return self._send(
                            400,
                            {"RestApiStatusCode": 409, "RestApiResponse": {"detail": "exists"}},
                            "RestApiClientException",
                        )
                    wire.runs[(dag_id, run_id)] = {
                        "dag_run_id": run_id,
                        "state": "queued",
                        "conf": body["Body"]["conf"],
                    }
                    return self._send(200, {"RestApiStatusCode": 200, "RestApiResponse": wire.runs[(dag_id, run_id)]})
                run = wire.runs.get((dag_id, body["Path"].rsplit("/", 1)[1]))
                if run is None:
                    return self._send(
                        400, {"RestApiStatusCode": 404, "RestApiResponse": {"detail": "nope"}}, "RestApiClientException"
                    )
                return self._send(200, {"RestApiStatusCode": 200, "RestApiResponse": run})

            def do_GET(self):  # noqa: N802 - GetEnvironment
                self._send(
                    200,
                    {"Environment": {"Name": "mlops-dev", "WebserverUrl": "web.example", "AirflowVersion": "2.11.2"}},
                )

            def _send(self, status, payload, error_type=None):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if error_type:
                    self.send_header("x-amzn-ErrorType", error_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def wire(monkeypatch):
    fake = MwaaWire()
    for name, value in {
        "AWS_ENDPOINT_URL_MWAA": fake.url,
        "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "MWAA_ENVIRONMENT_NAME": "mlops-dev",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(handler_module, "_service", None)
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


EVENT = {
    "action": "trigger",
    "dag_id": DAG_TRAINING,
    "pipeline_id": 10,
    "job_id": 20,
    "conf": {"project": "fraud", "model": "scorer", "image_tag": "1.0.0"},
}


def test_trigger_twice_over_the_wire_returns_the_same_run(wire):
    first = handler_module.handler(EVENT, FakeContext())
    second = handler_module.handler(EVENT, FakeContext())
    assert first["status"] == 201 and second["status"] == 200 and second["created"] is False
    assert first["dag_run_id"] == second["dag_run_id"] == "gl-a-k"
    assert first["url"] == f"https://web.example/dags/{DAG_TRAINING}/grid?dag_run_id=gl-a-k"
    path, host, body = wire.requests[0]
    assert path == "/restapi/mlops-dev" and host.startswith("127.0.0.1")  # no "env." prefix
    assert body["Method"] == "POST" and body["Path"] == f"/dags/{DAG_TRAINING}/dagRuns"
    assert body["Body"]["logical_date"] and body["Body"]["dag_run_id"] == "gl-a-k"
    assert len(wire.runs) == 1


def test_airflow_404_over_the_wire_is_structured(wire):
    result = handler_module.handler({"action": "status", "dag_id": DAG_TRAINING, "dag_run_id": "gl-1-1"}, FakeContext())
    assert result == {"ok": False, "status": 404, "error": {"code": "not_found", "message": "Airflow: nope"}}
