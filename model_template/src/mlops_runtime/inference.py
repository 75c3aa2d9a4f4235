"""What the endpoint answers: ``GET /ping`` and ``POST /invocations``. The HTTP server (server.py)
hands over whole requests; a request for predictions comes back as a ``Pending`` parsed matrix, and
the server predicts the pending requests of one moment together (``predict``).

Response (JSON, the default)::

    {"predictions": [{"label": "malicious", "probability": 0.97}, ...],
     "model": {"model_name": ..., "model_version": ..., "training_data": ...,
               "trained_at": ..., "source_commit": ...}}

``Accept: text/csv`` gives CSV (a header row, one row per record), ``Accept: application/jsonlines``
one JSON prediction per line; both carry the manifest in ``X-Amzn-SageMaker-Custom-Attributes``, as
every response does. Errors are ``{"error": "<message>", "status": <code>}``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import orjson

import team_model
from mlops_runtime import manifest, payload
from mlops_runtime.paths import MLPaths

MAX_PAYLOAD_ENV = "MLOPS_MAX_PAYLOAD_BYTES"
MAX_RECORDS_ENV = "MLOPS_MAX_RECORDS"
BATCH_RECORDS_ENV = "MLOPS_BATCH_RECORDS"
DEFAULT_MAX_PAYLOAD = 6 * 1024 * 1024  # SageMaker real-time endpoints accept at most 6 MB
DEFAULT_MAX_RECORDS = 10_000
DEFAULT_BATCH_RECORDS = 1_000
RESPONSE_TYPES = (payload.JSON, payload.CSV, payload.JSON_LINES)  # the first is the default

log = logging.getLogger("mlops_runtime.inference")


@dataclass(slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = payload.JSON
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class Pending:
    """A valid request whose records wait for the model."""

    X: np.ndarray
    accept: str


@lru_cache(maxsize=64)  # clients send the same few Accept headers
def negotiate(header: str | None) -> str | None:
    """The response type for an Accept header (RFC 9110 12.5.1): the supported type with the highest
    q-value, taken from its most specific matching range; on a tie, the one the client lists first.
    None when every supported type has q=0 or matches nothing."""
    if not header or not header.strip():
        return RESPONSE_TYPES[0]
    best: dict[str, tuple[int, float, int]] = {}  # type -> (specificity, q, position)
    for position, item in enumerate(header.split(",")):
        media, *params = (part.strip() for part in item.split(";"))
        media = media.lower()
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        for kind in RESPONSE_TYPES:
            major = kind.split("/")[0]
            specificity = 2 if media == kind else 1 if media == f"{major}/*" else 0 if media == "*/*" else -1
            if specificity >= 0 and specificity >= best.get(kind, (-1, 0.0, 0))[0]:
                best[kind] = (specificity, q, position)
    ranked = sorted(
        (
            (q, -position, -RESPONSE_TYPES.index(kind), kind)
            for kind, (_, q, position) in best.items()
            if q > 0
        ),
        reverse=True,
    )
    return ranked[0][3] if ranked else None


class InferenceApp:
    def __init__(self, model_dir: Path, environ: dict | None = None):
        env = os.environ if environ is None else environ
        started = time.perf_counter()
        self.model = team_model.load(model_dir)
        self.manifest = manifest.from_env(env)
        self.max_payload = int(env.get(MAX_PAYLOAD_ENV) or DEFAULT_MAX_PAYLOAD)
        self.max_records = int(env.get(MAX_RECORDS_ENV) or DEFAULT_MAX_RECORDS)
        # Requests that arrive together are predicted in one call of up to this many records: one
        # predict of n rows costs far less than n predicts of one row. 1 turns it off (a model whose
        # predictions depend on the other rows of the call must not be batched).
        self.batch_records = max(1, int(env.get(BATCH_RECORDS_ENV) or DEFAULT_BATCH_RECORDS))
        self._manifest_json = orjson.dumps(self.manifest)
        attributes = manifest.custom_attributes(self.manifest)
        self._headers = (("X-Amzn-SageMaker-Custom-Attributes", attributes),) if attributes else ()
        log.info(
            "model loaded from %s in worker pid=%d in %.3f s",
            model_dir,
            os.getpid(),
            time.perf_counter() - started,
        )

    def handle(
        self, method: str, path: str, content_type: str | None, accept: str | None, body: bytes
    ) -> Response | Pending:
        if path == "/invocations":
            if method != "POST":
                return self.error(405, f"{method} /invocations: use POST", allow="POST")
            kind = negotiate(accept)
            if kind is None:
                return self.error(406, f"cannot answer Accept {accept!r}; accept {', '.join(RESPONSE_TYPES)}")
            try:
                return Pending(payload.parse(body, content_type, team_model.FEATURES, self.max_records), kind)
            except payload.PayloadError as error:
                return self.error(error.status, error.message)
        if path == "/ping":
            if method not in ("GET", "HEAD"):
                return self.error(405, f"{method} /ping: use GET", allow="GET")
            return Response(200, b'{"status":"healthy"}', payload.JSON, self._headers)
        return self.error(404, f"no route {path!r}: use GET /ping or POST /invocations")

    def predict(self, requests: list[Pending]) -> list[Response]:
        """One response per request, from one call of the team's ``predict``."""
        X = requests[0].X if len(requests) == 1 else np.concatenate([r.X for r in requests])
        try:
            predictions = team_model.predict(self.model, X)
            if len(predictions) != len(X):
                raise ValueError(f"predict returned {len(predictions)} results for {len(X)} records")
        except Exception:  # pylint: disable=broad-exception-caught  # a model bug: log it, answer 500, keep serving
            if len(requests) > 1:  # only the request that breaks the model gets the 500
                return [response for r in requests for response in self.predict([r])]
            log.exception("prediction failed for %d record(s)", len(X))
            return [self.error(500, "prediction failed; see the endpoint's log")]
        responses, start = [], 0
        for request in requests:
            end = start + len(request.X)
            responses.append(self._encode(predictions[start:end], request.accept))
            start = end
        return responses

    def _encode(self, predictions: list[dict], kind: str) -> Response:
        try:
            if kind == payload.CSV:
                columns = list(predictions[0])
                lines = [",".join(columns)] + [",".join(str(p[c]) for c in columns) for p in predictions]
                return Response(200, ("\n".join(lines) + "\n").encode(), kind, self._headers)
            # NumPy scalars too, in case a team's predict returns them.
            if kind == payload.JSON_LINES:
                body = b"".join(
                    orjson.dumps(p, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n" for p in predictions
                )
                return Response(200, body, kind, self._headers)
            encoded = orjson.dumps(predictions, option=orjson.OPT_SERIALIZE_NUMPY)
        except (TypeError, KeyError):
            log.exception("predict returned something that cannot be encoded as %s", kind)
            return self.error(500, f"prediction cannot be encoded as {kind}; see the endpoint's log")
        body = b'{"predictions":' + encoded + b',"model":' + self._manifest_json + b"}"
        return Response(200, body, payload.JSON, self._headers)

    def error(self, status: int, message: str, **headers: str) -> Response:
        body = json.dumps({"error": message, "status": status}).encode()
        return Response(
            status, body, payload.JSON, self._headers + tuple((k.capitalize(), v) for k, v in headers.items())
        )


def create_app() -> InferenceApp:
    """Called once per server worker (after the fork), so every worker loads the model once."""
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return InferenceApp(MLPaths.from_env().model)
