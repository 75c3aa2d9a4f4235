"""Serving benchmark of the model template, on loopback, in one run.

Measures p50/p99 latency and requests per second for a 1-record and a 100-record JSON request on:
  (a) in-process   ``team_model.predict`` on a ready matrix, back to back (the floor: no HTTP, no
                   parsing), and "paced" (see below);
  (b) template     the template's ``serve`` (gunicorn, one worker per core), started as a process;
  (c) flask        a plain single-process Flask app with the same contract and the same parsing and
                   prediction code, on Flask's threaded server: what a team would write by hand.

Latency: one client, sequential requests, a new connection each time (both servers close the
connection after every response), measured in blocks alternating with in-process predictions so
both see the same machine load. "in-process, paced" is the same prediction after 0.5 ms idle: a
server's predict runs between network events, with colder CPU caches than a back-to-back loop.
Throughput: wrk (``apt-get install wrk``) with 8 connections, the median of 5 windows in which the
servers take turns; without wrk, closed
loops of a minimal raw-socket Python client in 8 processes, which take more of the machine's CPU
away from the servers (client and servers share the same cores), so the numbers are lower.

    .venv/bin/python benchmarks/serving.py [--requests 2000] [--duration 5] [--clients 8]
                                           [--load-generator auto|wrk|python]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEMPLATE_SRC = REPO / "model_template" / "src"
sys.path.insert(0, str(TEMPLATE_SRC))


# --------------------------------------------------------------------------- the Flask baseline
def run_flask_server(port: int) -> None:
    """The hand-written baseline: Flask's built-in threaded server, one process."""
    import team_model
    from flask import Flask, Response, request
    from mlops_runtime import manifest, payload
    from mlops_runtime.paths import MLPaths

    model = team_model.load(MLPaths.from_env().model)
    model_manifest = manifest.from_env()
    app = Flask("baseline")

    @app.get("/ping")
    def ping():
        return {"status": "healthy"}

    @app.post("/invocations")
    def invocations():
        try:
            X = payload.parse(request.get_data(), request.content_type, team_model.FEATURES, 10_000)
        except payload.PayloadError as error:
            return Response(
                json.dumps({"error": error.message, "status": error.status}),
                status=error.status,
                mimetype="application/json",
            )
        return {"predictions": team_model.predict(model, X), "model": model_manifest}

    app.run(host="127.0.0.1", port=port, threaded=True)


# --------------------------------------------------------------------------- client
def _request_bytes(port: int, body: bytes) -> bytes:
    head = (
        f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Accept: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


def _roundtrip(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(request)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    response = b"".join(chunks)
    if not response.startswith(b"HTTP/1.1 200") and not response.startswith(b"HTTP/1.0 200"):
        raise RuntimeError(f"unexpected response: {response[:200]!r}")
    return response


def _closed_loop(port: int, request: bytes, deadline: float, counter) -> None:
    done = 0
    while time.perf_counter() < deadline:
        _roundtrip(port, request)
        done += 1
    with counter.get_lock():
        counter.value += done


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1e3, ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3


def measure_throughput(port: int, body: bytes, duration: float, clients: int) -> float:
    """Closed-loop client processes of the raw-socket client (when wrk is not installed)."""
    request = _request_bytes(port, body)
    counter = multiprocessing.Value("l", 0)
    deadline = time.perf_counter() + duration
    workers = [
        multiprocessing.Process(target=_closed_loop, args=(port, request, deadline, counter)) for _ in range(clients)
    ]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return counter.value / (time.perf_counter() - started)


WRK_SCRIPT = """
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
"""


def measure_throughput_wrk(wrk: str, port: int, body: bytes, duration: float, connections: int) -> float:
    """wrk (C, one event-loop thread) as the load generator: it needs far less CPU per request than
    Python clients, so on a 2-core machine the servers, not the client, set the number."""
    with tempfile.TemporaryDirectory() as tmp:
        script, body_file = Path(tmp) / "post.lua", Path(tmp) / "body.json"
        script.write_text(WRK_SCRIPT)
        body_file.write_bytes(body)
        result = subprocess.run(
            [
                wrk,
                "-t1",
                f"-c{connections}",
                f"-d{duration:g}s",
                "-s",
                str(script),
                f"http://127.0.0.1:{port}/invocations",
            ],
            env={**os.environ, "BENCH_BODY": str(body_file)},
            capture_output=True,
            text=True,
            check=True,
        )
    if "Non-2xx" in result.stdout:
        raise RuntimeError(f"wrk saw error responses:\n{result.stdout}")
    return float(re.search(r"Requests/sec:\s+([0-9.]+)", result.stdout).group(1))


def measure_latency(ports: dict[str, int], body: bytes, model, X, requests: int, rounds: int = 10) -> dict:
    """Sequential latencies of each server's HTTP requests and of in-process predictions, in
    alternating blocks, so that all see the same machine load (other processes come and go)."""
    import team_model

    requests_by_server = {name: _request_bytes(port, body) for name, port in ports.items()}
    for _ in range(50):  # warm-up: every worker has answered once
        for name, port in ports.items():
            _roundtrip(port, requests_by_server[name])
        team_model.predict(model, X)
    samples: dict[str, list] = {**{name: [] for name in ports}, "hot": [], "paced": []}
    block = max(1, requests // rounds)
    for _ in range(rounds):
        for name, port in ports.items():
            request = requests_by_server[name]
            for _ in range(block):
                started = time.perf_counter()
                _roundtrip(port, request)
                samples[name].append(time.perf_counter() - started)
        for _ in range(block):  # back to back: the CPU's caches stay warm (the brief's floor)
            started = time.perf_counter()
            team_model.predict(model, X)
            samples["hot"].append(time.perf_counter() - started)
        for _ in range(block):  # after 0.5 ms idle, as a server's predict runs between requests
            time.sleep(0.0005)
            started = time.perf_counter()
            team_model.predict(model, X)
            samples["paced"].append(time.perf_counter() - started)
    return samples


def _tree_cpu_seconds(pid: int) -> float:
    """User+system CPU time of a process and its children (a gunicorn master and its workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # a process that ended while we looked
            continue
        if int(stat.parent.name) == pid or int(fields[1]) == pid:  # fields[1] is the parent pid
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def measure_throughputs(
    ports: dict[str, int],
    pids: dict[str, int],
    body: bytes,
    duration: float,
    clients: int,
    wrk: str | None,
    rounds: int = 5,
) -> dict[str, dict]:
    """Requests/s of each server: the median of ``rounds`` windows, servers alternating, so a burst of
    load from elsewhere on the machine does not land on one server only. Also the server's own CPU
    time per request, which other processes' load hardly changes."""
    window = duration / rounds
    runs: dict[str, list[float]] = {name: [] for name in ports}
    cpu: dict[str, float] = dict.fromkeys(ports, 0.0)
    served: dict[str, float] = dict.fromkeys(ports, 0.0)
    for _ in range(rounds):
        for name, port in ports.items():
            before = _tree_cpu_seconds(pids[name])
            if wrk:
                rps = measure_throughput_wrk(wrk, port, body, window, clients)
            else:
                rps = measure_throughput(port, body, window, clients)
            cpu[name] += _tree_cpu_seconds(pids[name]) - before
            served[name] += rps * window
            runs[name].append(rps)
    return {
        name: {"rps": statistics.median(runs[name]), "cpu_ms_per_request": 1e3 * cpu[name] / served[name]}
        for name in ports
    }


def _summary(latencies: list[float], throughput: dict | None = None) -> dict:
    p50, p99 = _percentiles(latencies)
    if throughput is None:
        # In-process: one caller, back to back, what one Python thread gets without a server; its CPU
        # per request is its latency.
        mean = sum(latencies) / len(latencies)
        throughput = {"rps": 1 / mean, "cpu_ms_per_request": mean * 1e3}
    return {"p50_ms": p50, "p99_ms": p99, **throughput}


# --------------------------------------------------------------------------- orchestration
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(port: int, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if conn.recv(64).startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server did not become ready")


def _start(command: list[str], env: dict, port: int) -> subprocess.Popen:
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_ready(port, process)
    return process


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _prepare_model(root: Path) -> None:
    from mlops_runtime import train
    from mlops_runtime.paths import MLPaths
    from team_model import data

    data.write_dataset(root / "input" / "data")
    train.run(MLPaths(root))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="sequential requests for latency")
    parser.add_argument("--duration", type=float, default=10.0, help="throughput seconds per server and size")
    parser.add_argument("--clients", type=int, default=8, help="concurrent connections (wrk) or client processes")
    parser.add_argument(
        "--load-generator",
        choices=["auto", "wrk", "python"],
        default="auto",
        help="throughput client: wrk if installed (apt-get install wrk), else Python processes",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--flask-server", type=int, help=argparse.SUPPRESS)  # internal: run baseline
    args = parser.parse_args(argv)
    if args.flask_server:
        run_flask_server(args.flask_server)
        return

    import numpy as np
    import team_model
    from team_model import data

    wrk = shutil.which("wrk") if args.load_generator != "python" else None
    if args.load_generator == "wrk" and not wrk:
        parser.error("wrk is not installed (apt-get install wrk)")

    with tempfile.TemporaryDirectory(prefix="serving-bench-") as tmp:
        root = Path(tmp)
        _prepare_model(root)
        model = team_model.load(root / "model")
        X, _ = data.generate(100, seed=7)
        bodies = {1: json.dumps(X[:1].tolist()).encode(), 100: json.dumps(X.tolist()).encode()}
        matrices = {1: np.asarray(X[:1]), 100: np.asarray(X)}

        env = {
            **os.environ,
            "MLOPS_ML_ROOT": str(root),
            "PYTHONPATH": str(TEMPLATE_SRC),
            "MLOPS_SERVE_HOST": "127.0.0.1",
            "MLOPS_MODEL_NAME": "bench",
            "MLOPS_MODEL_VERSION": "0.0.0",
        }
        results: dict[str, dict[int, dict]] = {"in-process": {}, "in-process, paced": {}, "template": {}, "flask": {}}
        servers = {
            "template": lambda port: (
                [sys.executable, "-m", "mlops_runtime", "serve"],
                {**env, "SAGEMAKER_BIND_TO_PORT": str(port)},
            ),
            "flask": lambda port: ([sys.executable, __file__, "--flask-server", str(port)], env),
        }
        ports: dict[str, int] = {}
        pids: dict[str, int] = {}
        started: list[subprocess.Popen] = []
        try:
            for name, command in servers.items():  # both up for the whole run, used in turns
                ports[name] = _free_port()
                started.append(_start(*command(ports[name]), ports[name]))
                pids[name] = started[-1].pid
            for n in (1, 100):
                samples = measure_latency(ports, bodies[n], model, matrices[n], args.requests)
                throughput = measure_throughputs(ports, pids, bodies[n], args.duration, args.clients, wrk)
                for name in ports:
                    results[name][n] = _summary(samples[name], throughput[name])
                results["in-process"][n] = _summary(samples["hot"])
                results["in-process, paced"][n] = _summary(samples["paced"])
        finally:
            for process in started:
                _stop(process)

    from mlops_runtime.serve import cpu_count

    workers = os.environ.get("SAGEMAKER_MODEL_SERVER_WORKERS") or cpu_count()
    print(
        f"\ncores: {cpu_count()}, template workers: {workers}, latency: {args.requests} sequential "
        f"requests, throughput: {'wrk' if wrk else 'Python client processes'}, {args.clients} "
        f"connections, 5 alternating windows, {args.duration:g} s per server\n"
    )
    print("| implementation | records/request | p50 ms | p99 ms | requests/s | CPU ms/request |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, by_n in results.items():
        for n, r in by_n.items():
            print(
                f"| {name} | {n} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {r['rps']:.0f} "
                f"| {r['cpu_ms_per_request']:.3f} |"
            )
    print(f"\nload average (1 min) at the end: {os.getloadavg()[0]:.2f}")
    for n in (1, 100):
        template = results["template"][n]["p50_ms"]
        overhead = template - results["in-process"][n]["p50_ms"]
        paced = template - results["in-process, paced"][n]["p50_ms"]
        ratio = results["template"][n]["rps"] / results["flask"][n]["rps"]
        cpu_ratio = results["flask"][n]["cpu_ms_per_request"] / results["template"][n]["cpu_ms_per_request"]
        print(
            f"{n} record(s): template p50 overhead {overhead:.3f} ms over in-process "
            f"({paced:.3f} ms over paced in-process); template/flask throughput {ratio:.2f}x, "
            f"flask/template CPU per request {cpu_ratio:.2f}x"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
