"""The baselines of benchmarks/serving.py: the template's contract written the usual ways, each with
the template's own request parsing (``mlops_runtime.payload``), model and response encoding
(orjson), so that only the server stack differs. No access logs anywhere (the template has none).

- ``fastapi_app``: FastAPI on uvicorn (uvloop + httptools), ``async def`` handlers (no thread hop);
- ``flask_app``: Flask, run on gunicorn (gthread workers: keep-alive) and behind nginx on gunicorn
  gevent workers, the layout of AWS's bring-your-own-container sample (scikit_bring_your_own).
"""

# No "from __future__ import annotations": FastAPI reads the handlers' annotations (Request) at run time.
import orjson
import team_model
from mlops_runtime import manifest, payload
from mlops_runtime.paths import MLPaths

MAX_RECORDS = 10_000
PING = b'{"status":"healthy"}'


def _load():
    return team_model.load(MLPaths.from_env().model), orjson.dumps(manifest.from_env())


def _answer(model, manifest_json: bytes, body: bytes, content_type) -> tuple[int, bytes]:
    try:
        X = payload.parse(body, content_type, team_model.FEATURES, MAX_RECORDS)
    except payload.PayloadError as error:
        return error.status, orjson.dumps({"error": error.message, "status": error.status})
    predictions = orjson.dumps(team_model.predict(model, X), option=orjson.OPT_SERIALIZE_NUMPY)
    return 200, b'{"predictions":' + predictions + b',"model":' + manifest_json + b"}"


def fastapi_app():
    from fastapi import FastAPI, Request
    from fastapi.responses import Response

    model, manifest_json = _load()
    app = FastAPI()

    @app.get("/ping")
    async def ping():
        return Response(PING, media_type="application/json")

    @app.post("/invocations")
    async def invocations(request: Request):
        status, body = _answer(model, manifest_json, await request.body(), request.headers.get("content-type"))
        return Response(body, status_code=status, media_type="application/json")

    return app


def flask_app():
    from flask import Flask, Response, request

    model, manifest_json = _load()
    app = Flask("baseline")

    @app.get("/ping")
    def ping():
        return Response(PING, mimetype="application/json")

    @app.post("/invocations")
    def invocations():
        status, body = _answer(model, manifest_json, request.get_data(), request.content_type)
        return Response(body, status=status, mimetype="application/json")

    return app
