"""Local MWAA: ``InvokeRestApi`` forwarded to a local Airflow REST API (moto has no MWAA backend).

MWAA adds the API version prefix itself (``Path`` is e.g. ``/dags/{dag_id}/dagRuns``), so the
scenario's ``mwaa.airflow_url`` includes it: ``http://127.0.0.1:8080/api/v2`` for Airflow 3,
``.../api/v1`` for Airflow 2. ``mwaa.auth``: ``none``, ``basic`` (Airflow 2 basic auth backend) or
``jwt`` (Airflow 3 simple auth manager: ``POST /auth/token`` with username/password).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from local_aws.scenario import Scenario
from local_aws.wire import AwsError

INVOKE_PATH = re.compile(r"^/restapi/(?P<name>[^/]+)$")


class MwaaForwarder:
    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self._token: tuple[str, str] | None = None  # (airflow_url, token)
        self._lock = threading.Lock()

    def invoke_rest_api(self, environment: str, body: bytes) -> dict[str, Any]:
        settings = self.scenario.snapshot()["mwaa"]
        base = settings.get("airflow_url")
        if not base:
            raise AwsError(
                "ResourceNotFoundException",
                f"Environment {environment} not found (no local Airflow configured: scenario mwaa.airflow_url)",
                status=404,
            )
        params = json.loads(body or b"{}")
        url = base.rstrip("/") + params["Path"]
        if params.get("QueryParameters"):
            url += "?" + urllib.parse.urlencode(params["QueryParameters"], doseq=True)
        data = json.dumps(params["Body"]).encode() if params.get("Body") is not None else None
        headers = {"Content-Type": "application/json", "Accept": "application/json", **self._auth(settings)}
        request = urllib.request.Request(url, data=data, method=params["Method"], headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback Airflow
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, payload = error.code, error.read()
        except OSError as error:
            raise AwsError(
                "InternalServerException", f"local Airflow at {base} unreachable: {error}", status=500
            ) from error
        try:
            document: Any = json.loads(payload) if payload else {}
        except ValueError:
            document = {"raw": payload.decode(errors="replace")}
        if status >= 400:
            code = "RestApiClientException" if status < 500 else "RestApiServerException"
            raise AwsError(
                code,
                f"Airflow REST API returned {status}",
                status=400,
                RestApiStatusCode=status,
                RestApiResponse=document,
            )
        return {"RestApiStatusCode": status, "RestApiResponse": document}

    def _auth(self, settings: dict[str, Any]) -> dict[str, str]:
        auth = settings.get("auth", "none")
        if auth == "basic":
            raw = f"{settings['username']}:{settings['password']}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        if auth == "jwt":
            return {"Authorization": "Bearer " + self._jwt(settings)}
        return {}

    def _jwt(self, settings: dict[str, Any]) -> str:
        base = settings["airflow_url"]
        with self._lock:
            if self._token and self._token[0] == base:
                return self._token[1]
            parts = urllib.parse.urlsplit(base)
            token_url = f"{parts.scheme}://{parts.netloc}/auth/token"
            body = json.dumps({"username": settings["username"], "password": settings["password"]}).encode()
            request = urllib.request.Request(  # noqa: S310
                token_url, data=body, method="POST", headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                token = json.loads(response.read())["access_token"]
            self._token = (base, token)
            return token
