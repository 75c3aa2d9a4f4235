"""Real local services for the CLI: moto server (ECR, STS), a stand-in for GitLab's artifacts API
and a stand-in for the Lambda Invoke API that runs the real trigger handler against an in-memory
Airflow. boto3 reaches them through AWS_ENDPOINT_URL* variables, as in the local demo."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

_HANDLER_ROOT = str(Path(__file__).resolve().parents[2] / "lambda_src" / "dag_trigger")
if _HANDLER_ROOT not in sys.path:
    sys.path.insert(0, _HANDLER_ROOT)

from cli_test_support import free_port  # noqa: E402
from dag_trigger_fn.airflow import AirflowApi  # noqa: E402
from dag_trigger_fn.handler import DagTriggerService  # noqa: E402

REGION = "eu-west-1"


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def aws(moto_url, monkeypatch) -> str:
    requests.post(f"{moto_url}/moto-api/reset", timeout=10)
    for name, value in {
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    return moto_url


class InMemoryAirflow:
    """The MWAA InvokeRestApi contract over a dict of DAG runs (409 on a duplicate run id)."""

    def __init__(self) -> None:
        self.runs: dict[tuple[str, str], dict] = {}
        self.calls: list[dict] = []

    @staticmethod
    def _error(status: int, detail: str) -> ClientError:
        return ClientError(
            {
                "Error": {"Code": "RestApiClientException", "Message": detail},
                "RestApiStatusCode": status,
                "RestApiResponse": {"detail": detail},
            },
            "InvokeRestApi",
        )

    def invoke_rest_api(self, *, Name, Path, Method, Body=None):  # noqa: N803 - boto3's names
        self.calls.append({"Path": Path, "Method": Method, "Body": Body})
        parts = Path.strip("/").split("/")
        dag_id = parts[1]
        if Method == "POST":
            key = (dag_id, Body["dag_run_id"])
            if key in self.runs:
                raise self._error(409, "DAGRun already exists")
            self.runs[key] = {
                "dag_id": dag_id,
                "dag_run_id": Body["dag_run_id"],
                "state": "queued",
                "conf": Body["conf"],
                "logical_date": Body["logical_date"],
            }
            return {"RestApiStatusCode": 200, "RestApiResponse": self.runs[key]}
        run = self.runs.get((dag_id, parts[3]))
        if run is None:
            raise self._error(404, "DAGRun not found")
        return {"RestApiStatusCode": 200, "RestApiResponse": run}

    def get_environment(self, *, Name):  # noqa: N803
        return {"Environment": {"WebserverUrl": "airflow.example", "AirflowVersion": "3.3.1"}}


class FakeLambda:
    """Lambda's GetFunctionUrlConfig (GET /2021-10-31/functions/{name}/url?Qualifier=...) and the
    project aliases' function URLs: a signed POST runs the trigger handler's service bound to the
    alias's project, as the real function is (the caller check of a URL request is tested with the
    handler, and IAM's refusal of another project's alias in tests/ci/test_trigger_isolation.py).
    Records (function, alias, request, signed key id)."""

    def __init__(self) -> None:
        self.airflow = InMemoryAirflow()
        self.service = DagTriggerService(
            AirflowApi(self.airflow, "mlops-dev", sleep=lambda s: None), self.airflow, "mlops-dev"
        )
        self.invocations: list[tuple[str, str, dict]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - GetFunctionUrlConfig
                function = self.path.split("/")[3]
                qualifier = self.path.split("Qualifier=")[-1]
                if function == "nope":
                    return self._send(
                        404, {"Type": "User", "Message": f"Function not found: {function}"}, "ResourceNotFoundException"
                    )
                self._send(200, {"FunctionUrl": f"{fake.url}/url/{function}/{qualifier}/", "AuthType": "AWS_IAM"})

            def do_POST(self):  # noqa: N802 - a function URL
                length = int(self.headers.get("Content-Length", 0))
                event = json.loads(self.rfile.read(length) or b"null")
                _, _, function, alias, _ = self.path.split("/")
                assert "Credential=" in self.headers.get("Authorization", ""), "the request must be SigV4-signed"
                fake.invocations.append((function, alias, event))
                result = fake.service.handle(event, project=alias)
                self._send(result["status"], result)

            def _send(self, status, body, error_type=None):
                data = json.dumps(body).encode()
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
def fake_lambda(aws, monkeypatch) -> Iterator[FakeLambda]:
    fake = FakeLambda()
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", fake.url)
    yield fake
    fake.server.shutdown()
    fake.server.server_close()
