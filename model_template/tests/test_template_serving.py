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


def test_a_stalled_upload_gets_a_408_and_sigterm_stops_the_server_gracefully(trained_root, tmp_path):
    import time

    root, _ = trained_root
    running = start_server(
        root, tmp_path / "serve.log", SAGEMAKER_MODEL_SERVER_WORKERS="1", SAGEMAKER_MODEL_SERVER_TIMEOUT="2"
    )
    with _Client(running) as client:  # sends half its body, then nothing
        client.send(_raw_request(b"[[1, 2", length=100))
        started = time.monotonic()
        status, headers, raw = client.response()
    assert status == 408 and headers["connection"] == "close", raw
    assert 2 <= time.monotonic() - started < 10
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


# ----------------------------------------------------------------------------- HTTP behaviour
def _raw_request(
    body: bytes, content_type: str = "application/json", extra: str = "", length: int | None = None
):
    length = len(body) if length is None else length
    head = (
        f"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {length}\r\n{extra}\r\n"
    )
    return head.encode() + body


class _Client:
    """A raw HTTP/1.1 client on one socket: requests are sent as given (partial, pipelined), and
    responses are read to the last byte of their body."""

    def __init__(self, server):
        import socket

        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def shutdown_write(self) -> None:
        import socket

        self.sock.shutdown(socket.SHUT_WR)

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a whole response: {self.buffer!r}")
        self.buffer += chunk

    def response(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
        length = int(headers["content-length"])
        while len(self.buffer) < length:
            self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(status_line.split()[1]), headers, body

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@pytest.mark.parametrize("cut", ["last byte", "last row"])
def test_a_body_shorter_than_its_content_length_is_refused_not_scored(server, cut):
    """The client stops sending (half-close) before Content-Length bytes: a 400, not a prediction on
    part of the data (the last value 14 read as 1, or one row fewer)."""
    body = CSV_ROWS.encode()
    sent = body[:-2] + b"\n" if cut == "last byte" else "".join(CSV_ROWS.splitlines(True)[:-1]).encode()
    with _Client(server) as client:
        client.send(_raw_request(sent, "text/csv", length=len(body)))
        client.shutdown_write()
        status, headers, raw = client.response()
    assert status == 400, raw
    assert (
        f"the request ended early: its body has {len(sent)} of {len(body)} bytes" in json.loads(raw)["error"]
    )
    assert headers["connection"] == "close"


def test_ping_answers_while_two_uploads_stall(server):
    """Two clients send half a body and stall (as many as the server has workers): the event loop
    reads bodies, so /ping and predictions go on; the uploads complete when their bytes arrive."""
    import time

    body = json.dumps(ROWS).encode()
    stalled = [_Client(server) for _ in range(2)]
    try:
        for client in stalled:
            client.send(_raw_request(body[: len(body) // 2], length=len(body)))
        slowest = 0.0
        for _ in range(20):
            started = time.perf_counter()
            assert server.request("GET", "/ping")[0] == 200
            slowest = max(slowest, time.perf_counter() - started)
        assert slowest < 1.0, f"a /ping took {slowest:.3f} s"
        assert server.post_json(ROWS[:1])[0] == 200
        for client in stalled:
            client.send(body[len(body) // 2 :])
            status, _, raw = client.response()
            assert status == 200, raw
    finally:
        for client in stalled:
            client.close()


def test_keep_alive_and_pipelined_requests_are_answered_in_order(server, expected):
    with _Client(server) as client:
        for _ in range(3):  # one connection, several requests
            client.send(_raw_request(json.dumps(ROWS[:1]).encode()))
            status, headers, raw = client.response()
            assert status == 200 and "connection" not in headers
            assert json.loads(raw)["predictions"] == expected[:1]
        # Pipelined: the prediction waits for the model, the ping behind it must not overtake it.
        ping = b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"
        client.send(_raw_request(json.dumps(ROWS).encode()) + ping + _raw_request(b"[[1]]"))
        responses = [client.response() for _ in range(3)]
    assert (responses[0][0], json.loads(responses[0][2])) == (
        200,
        {"predictions": expected, "model": EXPECTED_MANIFEST},
    )
    assert (responses[1][0], json.loads(responses[1][2])) == (200, {"status": "healthy"})
    assert responses[2][0] == 400


def test_expect_100_continue_is_answered_before_the_body(server):
    body = json.dumps(ROWS[:1]).encode()
    with _Client(server) as client:
        client.send(_raw_request(b"", extra="Expect: 100-continue\r\n", length=len(body)))
        assert client.sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        client.send(body)
        assert client.response()[0] == 200


def test_concurrent_requests_predicted_together_each_get_their_own_predictions(server, trained_root):
    """Requests that arrive together share one predict call; each must get exactly its rows back."""
    from concurrent.futures import ThreadPoolExecutor

    root, _ = trained_root
    rows = data.generate(60, seed=3)[0]
    model = team_model.load(root / "model")
    sizes = [1, 7, 2, 13, 1, 5, 9, 3, 1, 18]
    starts = np.cumsum([0, *sizes[:-1]])
    with ThreadPoolExecutor(len(sizes)) as pool:
        results = list(
            pool.map(
                lambda s: server.post_json(rows[s[0] : s[0] + s[1]].tolist()), zip(starts, sizes, strict=True)
            )
        )
    for (start, size), (status, _, body) in zip(zip(starts, sizes, strict=True), results, strict=True):
        assert status == 200
        assert body["predictions"] == team_model.predict(model, rows[start : start + size])


@pytest.mark.parametrize(
    ("accept", "answered"),
    [
        ("text/csv;q=0, application/json", "application/json"),
        ("application/json;q=0.5, text/csv", "text/csv"),
        ("text/*;q=0.9, */*;q=0.1", "text/csv"),
        ("application/jsonlines", "application/jsonlines"),
        ("*/*", "application/json"),
    ],
)
def test_accept_q_values_choose_the_response_type(server, accept, answered):
    status, headers, raw = server.request(
        "POST",
        "/invocations",
        json.dumps(ROWS[:2]).encode(),
        {"Content-Type": "application/json", "Accept": accept},
    )
    assert status == 200, raw
    assert headers["content-type"] == answered


def test_accept_that_refuses_every_type_is_a_406(server):
    status, _, raw = server.request(
        "POST",
        "/invocations",
        b"[[1]]",
        {"Content-Type": "application/json", "Accept": "application/json;q=0, text/*;q=0, */*;q=0"},
    )
    assert status == 406


def test_json_lines_in_and_out(server, expected):
    lines = "\n".join([json.dumps(RECORDS[0]), json.dumps(ROWS[1]), ""]).encode()
    status, headers, raw = server.request(
        "POST",
        "/invocations",
        lines,
        {"Content-Type": "application/jsonlines", "Accept": "application/jsonlines"},
    )
    assert status == 200, raw
    assert [json.loads(line) for line in raw.decode().splitlines()] == expected[:2]
    assert "model_version=1.4.2+r3" in headers["x-amzn-sagemaker-custom-attributes"]


def test_csv_with_a_utf8_byte_order_mark(server, expected):
    body = b"\xef\xbb\xbf" + (",".join(team_model.FEATURES) + "\n" + CSV_ROWS).encode()
    status, _, raw = server.request("POST", "/invocations", body, {"Content-Type": "text/csv"})
    assert status == 200, raw
    assert json.loads(raw)["predictions"] == expected


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (json.dumps([[*ROWS[0][:11], 3.5e38]]).encode(), "application/json"),
        ((",".join(["1"] * 11) + ",-1e39\n").encode(), "text/csv"),
    ],
)
def test_values_beyond_float32_are_refused_not_turned_into_infinity(server, body, content_type):
    status, _, raw = server.request("POST", "/invocations", body, {"Content-Type": content_type})
    assert status == 400
    assert "feature hour_of_day" in json.loads(raw)["error"] and "float32 range" in json.loads(raw)["error"]


def test_head_ping_has_headers_only(server):
    status, headers, body = server.request("HEAD", "/ping")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 0


def _sockets_of(pid: str) -> int:
    from pathlib import Path

    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            count += fd.readlink().name.startswith("socket:")
        except OSError:  # closed meanwhile
            pass
    return count


def test_keep_alive_connections_are_spread_over_the_workers(server):
    """Both workers wait on one listening socket; without balancing one of them can take every
    connection a client opens and leave the other core idle."""
    workers = loaded_workers(server, 2)
    before = {pid: _sockets_of(pid) for pid in workers}
    clients = [_Client(server) for _ in range(8)]
    try:
        for client in clients:  # one after the other, as a client's connection pool grows
            client.send(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
            assert client.response()[0] == 200
        added = sorted(_sockets_of(pid) - before[pid] for pid in workers)
    finally:
        for client in clients:
            client.close()
    assert sum(added) == 8 and added[1] - added[0] <= 2, added


def test_garbage_after_a_pipelined_request_closes_the_connection_after_its_answer(server, expected):
    with _Client(server) as client:
        client.send(_raw_request(json.dumps(ROWS[:1]).encode()) + b"NOT HTTP AT ALL\r\n\r\n")
        status, _, raw = client.response()
        assert (status, json.loads(raw)["predictions"]) == (200, expected[:1])
        assert client.sock.recv(100) == b""  # then closed, no answer to the garbage
