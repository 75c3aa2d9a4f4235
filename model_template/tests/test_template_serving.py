"""The ``serve`` entry point as a real server process, spoken to over HTTP on loopback."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from template_testing import MANIFEST, loaded_workers, start_server, stop_server

import team_model
from team_model import data

pytestmark = pytest.mark.integration

X, _ = data.generate(5, seed=99)
ROWS = X.tolist()
RECORDS = [dict(zip(team_model.FEATURES, row, strict=True)) for row in ROWS]
CSV_ROWS = "\n".join(",".join(repr(v) for v in row) for row in ROWS) + "\n"
EXPECTED_MANIFEST = {
    "model_name": MANIFEST["MLOPS_MODEL_NAME"],
    "model_version": MANIFEST["MLOPS_MODEL_VERSION"],
    "training_data": MANIFEST["MLOPS_TRAINING_DATA"],
    "trained_at": MANIFEST["MLOPS_TRAINED_AT"],
    "source_commit": MANIFEST["MLOPS_SOURCE_COMMIT"],
}


@pytest.fixture(scope="module")
def expected(trained_root):
    """What the model itself predicts for ROWS, in-process."""
    root, _ = trained_root
    return team_model.predict(team_model.load(root / "model"), np.asarray(ROWS))


def test_ping_is_healthy(server):
    status, headers, body = server.request("GET", "/ping")
    assert status == 200
    assert json.loads(body) == {"status": "healthy"}


@pytest.mark.parametrize(
    ("document", "count"),
    [
        (RECORDS[0], 1),  # one record by feature name
        (ROWS[0], 1),  # one record as a list in FEATURES order
        (RECORDS, 5),  # many records by name
        (ROWS, 5),  # many records as lists
        ({"instances": ROWS[:3]}, 3),  # SageMaker/TF-serving style envelope
    ],
)
def test_json_predictions_carry_the_model_manifest(server, expected, document, count):
    status, headers, body = server.post_json(document)
    assert status == 200, body
    assert body["predictions"] == expected[:count]
    assert body["model"] == EXPECTED_MANIFEST
    assert headers["content-type"] == "application/json"


def test_predictions_are_labels_with_probabilities(server):
    _, _, body = server.post_json(ROWS)
    for prediction in body["predictions"]:
        assert prediction["label"] in ("benign", "malicious")
        assert (prediction["probability"] >= 0.5) == (prediction["label"] == "malicious")


@pytest.mark.parametrize("count", [1, 5])
def test_csv_in_json_out(server, expected, count):
    payload = "".join(CSV_ROWS.splitlines(keepends=True)[:count]).encode()
    status, _, raw = server.request("POST", "/invocations", payload, {"Content-Type": "text/csv"})
    assert status == 200, raw
    assert json.loads(raw)["predictions"] == expected[:count]


def test_csv_with_header_in_csv_out_with_the_manifest_in_custom_attributes(server, expected):
    payload = (",".join(team_model.FEATURES) + "\n" + CSV_ROWS).encode()
    status, headers, raw = server.request(
        "POST", "/invocations", payload, {"Content-Type": "text/csv; charset=utf-8", "Accept": "text/csv"}
    )
    assert status == 200, raw
    assert headers["content-type"] == "text/csv"
    lines = raw.decode().splitlines()
    assert lines[0] == "label,probability"
    assert lines[1:] == [f"{p['label']},{p['probability']}" for p in expected]
    attributes = dict(item.split("=", 1) for item in headers["x-amzn-sagemaker-custom-attributes"].split(","))
    assert attributes["model_version"] == "1.4.2+r3"
    assert attributes["model_name"] == "process-events--classifier"


BAD_REQUESTS = [
    # (name, body, headers, status, message fragment)
    ("malformed JSON", b'{"instances": [[1, 2,', {"Content-Type": "application/json"}, 400, "malformed JSON"),
    ("malformed UTF-8", b"\xff\xfe[1]", {"Content-Type": "application/json"}, 400, "malformed JSON"),
    ("JSON scalar", b"42", {"Content-Type": "application/json"}, 400, "must be a record"),
    (
        "too few features",
        json.dumps([ROWS[0][:5]]).encode(),
        {"Content-Type": "application/json"},
        400,
        "record 0: 5 features, expected 12",
    ),
    (
        "missing feature by name",
        json.dumps({k: v for k, v in RECORDS[0].items() if k != "image_signed"}).encode(),
        {"Content-Type": "application/json"},
        400,
        "missing feature(s) image_signed",
    ),
    (
        "unknown feature",
        json.dumps({**RECORDS[0], "colour": 1}).encode(),
        {"Content-Type": "application/json"},
        400,
        "unknown feature(s) colour",
    ),
    (
        "string value",
        json.dumps([[*ROWS[0][:4], "yes", *ROWS[0][5:]]]).encode(),
        {"Content-Type": "application/json"},
        400,
        "feature image_signed: expected a number, got string 'yes'",
    ),
    (
        "boolean value",
        json.dumps([[True, *ROWS[0][1:]]]).encode(),
        {"Content-Type": "application/json"},
        400,
        "got boolean True",
    ),
    (
        "null value",
        json.dumps([[None, *ROWS[0][1:]]]).encode(),
        {"Content-Type": "application/json"},
        400,
        "got null",
    ),
    (
        "NaN",
        b"[[NaN" + b", 1" * 11 + b"]]",
        {"Content-Type": "application/json"},
        400,
        "malformed JSON",  # NaN is not JSON
    ),
    (
        "number beyond float range",
        b"[[1" + b"0" * 400 + b", 1" * 11 + b"]]",
        {"Content-Type": "application/json"},
        400,
        "malformed JSON: number is infinity",
    ),
    (
        "record of the wrong kind",
        json.dumps([RECORDS[0], "x"]).encode(),
        {"Content-Type": "application/json"},
        400,
        "record 1: expected an object or a list, got string",
    ),
    ("empty list", b"[]", {"Content-Type": "application/json"}, 400, "empty payload"),
    ("empty instances", b'{"instances": []}', {"Content-Type": "application/json"}, 400, "empty payload"),
    ("empty body", b"", {"Content-Type": "application/json"}, 400, "empty payload"),
    ("whitespace body", b"  \n ", {"Content-Type": "text/csv"}, 400, "empty payload"),
    ("CSV wrong count", b"1,2,3\n", {"Content-Type": "text/csv"}, 400, "CSV row 1: 3 values, expected 12"),
    (
        "CSV not a number",
        ("1," * 11 + "abc\n").encode(),
        {"Content-Type": "text/csv"},
        400,
        "CSV row 1, feature hour_of_day: 'abc' is not a finite number",
    ),
    (
        "CSV quoted",
        ('"1",' * 11 + "1\n").encode(),
        {"Content-Type": "text/csv"},
        400,
        "is not a finite number",
    ),
    ("CSV inf", ("1," * 11 + "inf\n").encode(), {"Content-Type": "text/csv"}, 400, "is not a finite number"),
    ("CSV not UTF-8", b"\xff,\xfe\n", {"Content-Type": "text/csv"}, 400, "malformed CSV: not UTF-8"),
    ("no content type", b"[[1]]", {}, 415, "unsupported Content-Type missing"),
    (
        "unsupported content type",
        b"<x/>",
        {"Content-Type": "application/xml"},
        415,
        "unsupported Content-Type 'application/xml'",
    ),
    (
        "unacceptable Accept",
        json.dumps(ROWS[:1]).encode(),
        {"Content-Type": "application/json", "Accept": "application/protobuf"},
        406,
        "cannot answer Accept",
    ),
    (
        "oversized payload",
        b"[" + b"1," * 40_000 + b"1]",
        {"Content-Type": "application/json"},
        413,
        "over the 65536-byte limit",
    ),
    (
        "too many records",
        json.dumps([ROWS[0]] * 501).encode(),
        {"Content-Type": "application/json"},
        413,
        "501 records in one request; the limit is 500",
    ),
]


@pytest.mark.parametrize(
    ("name", "body", "headers", "status", "message"), BAD_REQUESTS, ids=[case[0] for case in BAD_REQUESTS]
)
def test_bad_input_gets_a_4xx_with_a_clear_message_and_the_server_keeps_serving(
    server, name, body, headers, status, message
):
    got, response_headers, raw = server.request("POST", "/invocations", body, headers)
    assert got == status, raw
    error = json.loads(raw)
    assert error["status"] == status
    assert message in error["error"]
    assert server.post_json(ROWS[:1])[0] == 200


def test_wrong_method_and_unknown_path(server):
    status, headers, raw = server.request("GET", "/invocations")
    assert (status, headers["allow"]) == (405, "POST")
    assert server.request("POST", "/ping", b"")[0] == 405
    status, _, raw = server.request("GET", "/predict")
    assert status == 404 and "use GET /ping or POST /invocations" in json.loads(raw)["error"]


def test_chunked_upload_over_the_limit_is_refused(server):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    chunks = (b"[" + b"1," * 20_000 for _ in range(4))  # ~160 kB without a Content-Length
    conn.request(
        "POST", "/invocations", body=chunks, headers={"Content-Type": "application/json"}, encode_chunked=True
    )
    response = conn.getresponse()
    assert response.status == 413
    conn.close()


def test_workers_honour_sagemaker_variables_and_load_the_model_once_each(server):
    for _ in range(30):
        assert server.post_json(ROWS)[0] == 200
    loaded = loaded_workers(server, 2)
    log = server.log_text()
    assert "serve: 2 worker(s) on 127.0.0.1" in log and "timeout 17 s" in log
    assert len(loaded) == 2 and len(set(loaded)) == 2, log
    assert "Traceback" not in log


def test_one_worker_per_core_when_sagemaker_does_not_say(trained_root, tmp_path):
    """No SAGEMAKER_MODEL_SERVER_WORKERS (start_server passes none): as many workers as the cores the
    process may run on. Pinned to at most two cores so the test costs the same on a big machine."""
    root, _ = trained_root
    cores = set(sorted(os.sched_getaffinity(0))[:2])
    running = start_server(root, tmp_path / "serve.log", cpus=cores)
    try:
        assert running.post_json(ROWS)[0] == 200
        loaded = loaded_workers(running, len(cores))
        log = running.log_text()
        assert f"serve: {len(cores)} worker(s) on 127.0.0.1" in log, log
        assert "timeout 60 s" in log, log
        assert len(loaded) == len(set(loaded)) == len(cores), log
    finally:
        stop_server(running)


def test_sigterm_stops_the_server_gracefully(trained_root, tmp_path):
    root, _ = trained_root
    running = start_server(root, tmp_path / "serve.log", SAGEMAKER_MODEL_SERVER_WORKERS="1")
    assert running.post_json(ROWS[:1])[0] == 200
    assert stop_server(running) == 0
    assert "Shutting down" in running.log_text()


def test_serve_without_a_model_exits_with_a_clear_message(tmp_path):
    import subprocess
    import sys

    from template_testing import entry_point_env

    result = subprocess.run(
        [sys.executable, "-m", "mlops_runtime", "serve"],
        env=entry_point_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert f"no model at {tmp_path / 'model'}" in result.stderr


def test_default_workers_are_the_cores_this_process_may_use(monkeypatch):
    """Unset or empty SAGEMAKER_MODEL_SERVER_WORKERS: one worker per core of the CPU affinity (a
    container's cpuset), not the host's core count; os.cpu_count() only where affinity is unknown."""
    from mlops_runtime import serve

    monkeypatch.setattr(serve.os, "sched_getaffinity", lambda pid: {0, 3, 5}, raising=False)
    monkeypatch.setattr(serve.os, "cpu_count", lambda: 64)
    assert serve.server_options({})["workers"] == 3
    assert serve.server_options({"SAGEMAKER_MODEL_SERVER_WORKERS": ""})["workers"] == 3
    assert serve.server_options({"SAGEMAKER_MODEL_SERVER_WORKERS": "5"})["workers"] == 5

    monkeypatch.delattr(serve.os, "sched_getaffinity")
    assert serve.server_options({})["workers"] == 64
    monkeypatch.setattr(serve.os, "cpu_count", lambda: None)
    assert serve.server_options({})["workers"] == 1


def test_server_defaults_when_sagemaker_sets_nothing():
    from mlops_runtime.serve import server_options

    options = server_options({})
    assert options["bind"] == "0.0.0.0:8080"
    assert options["timeout"] == 60
    assert options["workers"] == len(os.sched_getaffinity(0))


def test_bad_server_variables_are_refused_by_name(trained_root):
    from mlops_runtime.serve import server_options

    assert (
        server_options(
            {
                "SAGEMAKER_MODEL_SERVER_WORKERS": "3",
                "SAGEMAKER_MODEL_SERVER_TIMEOUT": "9",
                "SAGEMAKER_BIND_TO_PORT": "9090",
            }
        )["bind"]
        == "0.0.0.0:9090"
    )
    with pytest.raises(SystemExit, match="SAGEMAKER_MODEL_SERVER_WORKERS='two' is not an integer"):
        server_options({"SAGEMAKER_MODEL_SERVER_WORKERS": "two"})
    with pytest.raises(SystemExit, match="SAGEMAKER_MODEL_SERVER_TIMEOUT='0' must be at least 1"):
        server_options({"SAGEMAKER_MODEL_SERVER_TIMEOUT": "0"})
