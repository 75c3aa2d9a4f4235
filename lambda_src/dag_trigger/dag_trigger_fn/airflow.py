"""Airflow's REST API through MWAA's InvokeRestApi (SigV4; no CLI tokens, no CLI strings).

The same paths work on Airflow 2.x (/api/v1) and 3.x (/api/v2): MWAA maps ``Path`` onto the
environment's API version. Throttling and transient upstream failures are retried with full-jitter
exponential backoff inside the Lambda's remaining time; everything else becomes an AirflowError.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, ReadTimeoutError

# AWS-level throttling codes (MWAA has no modelled throttling shape, these arrive as ClientError).
THROTTLING_CODES = frozenset({"ThrottlingException", "TooManyRequestsException", "Throttling"})
TRANSIENT_CODES = frozenset({"ServiceUnavailableException", "InternalServerException"})
# Airflow answers that are worth another try (the run id makes a repeated POST harmless).
RETRYABLE_REST_STATUS = frozenset({429, 502, 503, 504})


class AirflowError(Exception):
    """A failed Airflow/MWAA call after retries; status/code become the Lambda's response."""

    def __init__(self, status: int, code: str, message: str, rest_status: int | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.rest_status = status, code, message, rest_status


@dataclass(frozen=True)
class RestResponse:
    status: int
    body: dict[str, Any]


def _detail(body: Any) -> str:
    """Airflow's human-readable error text (``detail``/``title``), shortened for the caller."""
    if isinstance(body, dict):
        text = body.get("detail") or body.get("title") or ""
        if not isinstance(text, str):
            text = str(text)
    else:
        text = ""
    return text[:300]


class AirflowApi:
    def __init__(
        self,
        client: Any,
        environment_name: str,
        *,
        max_attempts: int = 5,
        base_delay: float = 0.25,
        max_delay: float = 4.0,
        sleep: Callable[[float], None] = time.sleep,
        remaining_seconds: Callable[[], float] = lambda: 30.0,
    ) -> None:
        self._client = client
        self._environment = environment_name
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._sleep = sleep
        self.remaining_seconds = remaining_seconds

    def call(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, query: dict[str, str] | None = None
    ) -> RestResponse:
        kwargs: dict[str, Any] = {"Name": self._environment, "Path": path, "Method": method}
        if body is not None:
            kwargs["Body"] = body
        if query:
            kwargs["QueryParameters"] = query
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._client.invoke_rest_api(**kwargs)
                return RestResponse(response.get("RestApiStatusCode", 200), response.get("RestApiResponse") or {})
            except ClientError as exc:
                error = exc.response.get("Error", {})
                code = error.get("Code", "")
                rest_status = exc.response.get("RestApiStatusCode")
                rest_body = exc.response.get("RestApiResponse")
                retryable = (
                    code in THROTTLING_CODES or code in TRANSIENT_CODES or (rest_status in RETRYABLE_REST_STATUS)
                )
                if retryable and self._may_retry(attempt):
                    continue
                raise self._to_error(code, rest_status, rest_body, error.get("Message", "")) from None
            except (ConnectionError, ReadTimeoutError) as exc:
                if self._may_retry(attempt):
                    continue
                raise AirflowError(504, "upstream_unavailable", f"MWAA did not answer: {type(exc).__name__}") from None
            except BotoCoreError as exc:
                raise AirflowError(502, "upstream_error", f"MWAA call failed: {type(exc).__name__}") from None

    def _may_retry(self, attempt: int) -> bool:
        if attempt >= self._max_attempts:
            return False
        delay = random.uniform(0, min(self._max_delay, self._base_delay * 2 ** (attempt - 1)))  # noqa: S311
        # Keep enough time for one more ~10 s InvokeRestApi call (MWAA's own timeout).
        if self.remaining_seconds() - delay < 11:
            return False
        self._sleep(delay)
        return True

    @staticmethod
    def _to_error(code: str, rest_status: int | None, rest_body: Any, aws_message: str) -> AirflowError:
        if code in THROTTLING_CODES or rest_status == 429:
            return AirflowError(429, "throttled", "MWAA/Airflow kept throttling; retry later", rest_status)
        if code in ("RestApiClientException", "RestApiServerException") and rest_status is not None:
            detail = _detail(rest_body)
            if rest_status == 404:
                return AirflowError(404, "not_found", f"Airflow: {detail or 'not found'}", rest_status)
            if rest_status == 409:
                return AirflowError(409, "conflict", f"Airflow: {detail or 'conflict'}", rest_status)
            if rest_status in (400, 422):
                # Airflow refused the run (e.g. a DAG Param rejected the conf): the caller's fault.
                return AirflowError(400, "rejected_by_airflow", f"Airflow: {detail or 'bad request'}", rest_status)
            if rest_status in (401, 403):
                return AirflowError(
                    502,
                    "upstream_access_denied",
                    f"Airflow refused the trigger role ({rest_status}); check its Airflow RBAC role",
                    rest_status,
                )
            return AirflowError(502, "upstream_error", f"Airflow answered {rest_status}: {detail}", rest_status)
        if code == "AccessDeniedException":
            return AirflowError(502, "upstream_access_denied", "MWAA denied airflow:InvokeRestApi to the Lambda role")
        if code == "ResourceNotFoundException":
            return AirflowError(502, "environment_not_found", "the configured MWAA environment does not exist")
        if code in TRANSIENT_CODES:
            return AirflowError(503, "upstream_unavailable", f"MWAA is unavailable ({code})")
        return AirflowError(502, "upstream_error", f"MWAA error {code}: {aws_message[:200]}")
