"""The WSGI application behind ``serve``: ``GET /ping`` and ``POST /invocations``.

Plain WSGI rather than a web framework: the whole request path is a few dictionary look-ups,
which keeps the server's overhead over ``model.predict`` well under a millisecond.

Response (JSON, the default)::

    {"predictions": [{"label": "malicious", "probability": 0.97}, ...],
     "model": {"model_name": ..., "model_version": ..., "training_data": ...,
               "trained_at": ..., "source_commit": ...}}

With ``Accept: text/csv`` the body is CSV (header row, one row per record) and the manifest travels
in ``X-Amzn-SageMaker-Custom-Attributes``. Errors are ``{"error": "<message>", "status": <code>}``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

import orjson

import team_model
from mlops_runtime import manifest, payload
from mlops_runtime.paths import MLPaths

MAX_PAYLOAD_ENV = "MLOPS_MAX_PAYLOAD_BYTES"
MAX_RECORDS_ENV = "MLOPS_MAX_RECORDS"
DEFAULT_MAX_PAYLOAD = 6 * 1024 * 1024  # SageMaker real-time endpoints accept at most 6 MB
DEFAULT_MAX_RECORDS = 10_000

log = logging.getLogger("mlops_runtime.inference")

_STATUS = {
    200: "200 OK",
    400: "400 Bad Request",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    406: "406 Not Acceptable",
    411: "411 Length Required",
    413: "413 Payload Too Large",
    415: "415 Unsupported Media Type",
    500: "500 Internal Server Error",
}


def _accept(header: str | None) -> str | None:
    """The response type for an Accept header: JSON unless CSV is asked for first; None if neither."""
    if not header:
        return payload.JSON
    for item in header.split(","):
        kind = payload.media_type(item)
        if kind in (payload.JSON, "*/*", "application/*"):
            return payload.JSON
        if kind in (payload.CSV, "text/*"):
            return payload.CSV
    return None


DRAIN_LIMIT = 64 * 1024 * 1024


def _drain(stream, length: int) -> None:
    """Read and drop a refused body (up to a cap) so the client gets the 413, not a reset connection."""
    remaining = min(length, DRAIN_LIMIT)
    while remaining > 0:
        chunk = stream.read(min(remaining, 1 << 20))
        if not chunk:
            return
        remaining -= len(chunk)


class InferenceApp:
    def __init__(self, model_dir: Path, environ: dict | None = None):
        env = os.environ if environ is None else environ
        started = time.perf_counter()
        self.model = team_model.load(model_dir)
        self.manifest = manifest.from_env(env)
        self.max_payload = int(env.get(MAX_PAYLOAD_ENV) or DEFAULT_MAX_PAYLOAD)
        self.max_records = int(env.get(MAX_RECORDS_ENV) or DEFAULT_MAX_RECORDS)
        self._manifest_json = orjson.dumps(self.manifest)
        self._attributes = manifest.custom_attributes(self.manifest)
        log.info(
            "model loaded from %s in worker pid=%d in %.3f s",
            model_dir,
            os.getpid(),
            time.perf_counter() - started,
        )

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "")
        if path == "/invocations":
            if method != "POST":
                return self._error(start_response, 405, f"{method} /invocations: use POST", allow="POST")
            return self._invoke(environ, start_response)
        if path == "/ping":
            if method not in ("GET", "HEAD"):
                return self._error(start_response, 405, f"{method} /ping: use GET", allow="GET")
            return self._send(start_response, 200, b'{"status":"healthy"}', payload.JSON)
        return self._error(start_response, 404, f"no route {path!r}: use GET /ping or POST /invocations")

    def _invoke(self, environ, start_response):
        accept = _accept(environ.get("HTTP_ACCEPT"))
        if accept is None:
            return self._error(
                start_response,
                406,
                f"cannot answer Accept {environ.get('HTTP_ACCEPT')!r}; "
                f"accept {payload.JSON} or {payload.CSV}",
            )
        try:
            body = self._read_body(environ)
            X = payload.parse(body, environ.get("CONTENT_TYPE"), team_model.FEATURES, self.max_records)
        except payload.PayloadError as error:
            return self._error(start_response, error.status, error.message)
        try:
            predictions = team_model.predict(self.model, X)
        except Exception:  # pylint: disable=broad-exception-caught  # a model bug: log it, answer 500, keep serving
            log.exception("prediction failed for %d record(s)", len(X))
            return self._error(start_response, 500, "prediction failed; see the endpoint's log")
        if accept == payload.CSV:
            columns = list(predictions[0])
            lines = [",".join(columns)] + [",".join(str(p[c]) for c in columns) for p in predictions]
            return self._send(start_response, 200, ("\n".join(lines) + "\n").encode(), payload.CSV)
        try:
            # NumPy scalars too, in case a team's predict returns them.
            encoded = orjson.dumps(predictions, option=orjson.OPT_SERIALIZE_NUMPY)
        except TypeError:
            log.exception("predict returned something that is not JSON-serialisable")
            return self._error(
                start_response, 500, "prediction is not JSON-serialisable; see the endpoint's log"
            )
        body = b'{"predictions":' + encoded + b',"model":' + self._manifest_json + b"}"
        return self._send(start_response, 200, body, payload.JSON)

    def _read_body(self, environ) -> bytes:
        length_header = environ.get("CONTENT_LENGTH") or ""
        stream = environ["wsgi.input"]
        if length_header:
            try:
                length = int(length_header)
            except ValueError:
                raise payload.PayloadError(400, f"invalid Content-Length {length_header!r}") from None
            if length > self.max_payload:
                _drain(stream, length)
                raise payload.PayloadError(
                    413, f"payload of {length} bytes is over the {self.max_payload}-byte limit"
                )
            return stream.read(length) if length > 0 else b""
        body = stream.read(self.max_payload + 1)  # chunked upload: read at most one byte too many
        if len(body) > self.max_payload:
            _drain(stream, DRAIN_LIMIT)
            raise payload.PayloadError(413, f"payload is over the {self.max_payload}-byte limit")
        return body

    def _send(self, start_response, status: int, body: bytes, content_type: str, **extra):
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        if self._attributes:
            headers.append(("X-Amzn-SageMaker-Custom-Attributes", self._attributes))
        headers.extend((name.capitalize(), value) for name, value in extra.items())
        start_response(_STATUS[status], headers)
        return [body]

    def _error(self, start_response, status: int, message: str, **extra):
        body = json.dumps({"error": message, "status": status}).encode()
        return self._send(start_response, status, body, payload.JSON, **extra)


def create_app() -> InferenceApp:
    """Called once per server worker (after the fork), so every worker loads the model once."""
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return InferenceApp(MLPaths.from_env().model)
