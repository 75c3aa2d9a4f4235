"""Serving benchmark: the model template's ``serve`` against the usual Python stacks, in one run.

Every server runs the same model with the template's request parsing and orjson encoding, with as
many worker processes as the machine has cores (SageMaker's default), and no access log:

  template          ``python -m mlops_runtime serve`` (gunicorn + event-loop workers, batching)
  template, no batch  the same with ``MLOPS_BATCH_RECORDS=1``: what the server alone gives
  fastapi-uvicorn   FastAPI on uvicorn (uvloop, httptools), ``async def`` handlers
  flask-gunicorn    Flask on gunicorn gthread workers (4 threads: keep-alive capable)
  aws-sample        nginx -> gunicorn gevent workers -> Flask over a unix socket, the layout of
                    AWS's bring-your-own-container sample (skipped when nginx is not installed)
  in-process        parse + predict + encode in this process, back to back: the floor

For 1 and 100 records a request, in two modes, keep-alive (each connection reused) and new
connection (``Connection: close``), wrk (``apt-get install wrk``; a Python client otherwise) drives
8 connections for ``--duration`` seconds per window; the servers take turns, ``--rounds`` windows
each, and the median window is reported. wrk measures each latency to the last byte of the
response. Also per server: its own CPU time per request (every process of the server, from
/proc, in the keep-alive windows), its memory (RSS and PSS summed over its processes, after the
load), the p99 of ``GET /ping`` on new connections every 10 ms during the keep-alive load, and
the p99 of ``/ping`` while as many uploads stall as the server has workers.

The load generator shares the cores with the servers, as a busy machine's other work would: the
numbers are comparable within one run, not across machines.

    .venv/bin/python benchmarks/serving.py [--duration 5] [--rounds 3] [--json results.json]

It runs itself in its own virtualenv (.venvs/serving-bench, requirements/serving-benchmark.txt),
creating it on first use.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEMPLATE_SRC = REPO / "model_template" / "src"
VENV = REPO / ".venvs" / "serving-bench"
REQUIREMENTS = "requirements/serving-benchmark.txt"
SIZES = (1, 100)
MODES = ("keep-alive", "new connection")


def _in_own_venv(argv: list[str]) -> None:
    """Re-run this script with the benchmark's virtualenv (the baselines are not in the main one)."""
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    subprocess.run([str(REPO / "scripts" / "tool_venv.sh"), "serving-bench", REQUIREMENTS], check=True, cwd=REPO)
    python = VENV / "bin" / "python"
    os.execv(python, [str(python), __file__, *argv])  # noqa: S606 - our own venv's python, no shell


# --------------------------------------------------------------------------- servers
NGINX_CONF = """
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log stderr error;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fcgi; uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
  upstream gunicorn {{ server unix:{tmp}/gunicorn.sock; }}
  server {{
    listen 127.0.0.1:{port} deferred;
    client_max_body_size 6m;
    keepalive_timeout 75s;
    location ~ ^/(ping|invocations) {{
      proxy_set_header Host $http_host;
      proxy_redirect off;
      proxy_pass http://gunicorn;
    }}
    location / {{ return 404 "{{}}"; }}
  }}
}}
"""


def server_commands(workers: int, tmp: Path) -> dict:
    """name -> function(port) -> list of (argv, extra environment) to start, in order."""
    python = sys.executable
    gunicorn = [python, "-m", "gunicorn", "--workers", str(workers), "--log-level", "warning"]
    commands = {
        "template": lambda port: [
            ([python, "-m", "mlops_runtime", "serve"], {"SAGEMAKER_BIND_TO_PORT": str(port)}),
        ],
        "template, no batch": lambda port: [
            (
                [python, "-m", "mlops_runtime", "serve"],
                {"SAGEMAKER_BIND_TO_PORT": str(port), "MLOPS_BATCH_RECORDS": "1"},
            ),
        ],
        "fastapi-uvicorn": lambda port: [
            (
                [python, "-m", "uvicorn", "serving_baselines:fastapi_app", "--factory", "--host", "127.0.0.1"]
                + ["--port", str(port), "--workers", str(workers), "--no-access-log", "--log-level", "warning"],
                {},
            )
        ],
        "flask-gunicorn": lambda port: [
            (
                [*gunicorn, "--worker-class", "gthread", "--threads", "4", "--keep-alive", "75"]
                + ["--bind", f"127.0.0.1:{port}", "serving_baselines:flask_app()"],
                {},
            )
        ],
    }
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx:

        def aws_sample(port: int) -> list:
            conf = tmp / f"nginx-{port}.conf"
            conf.write_text(NGINX_CONF.format(tmp=tmp, port=port))
            return [
                (
                    [*gunicorn, "--worker-class", "gevent", "--bind", f"unix:{tmp}/gunicorn.sock"]
                    + ["serving_baselines:flask_app()"],
                    {},
                ),
                ([nginx, "-c", str(conf), "-e", "stderr"], {}),
            ]

        commands["aws-sample"] = aws_sample
    return commands


class Server:
    def __init__(self, name: str, steps: list, env: dict, port: int):
        self.name, self.port = name, port
        self.processes = []
        self.log = Path(env["MLOPS_ML_ROOT"]) / f"{name.replace(' ', '_').replace(',', '')}.log"
        with self.log.open("w") as log:
            for argv, extra in steps:
                self.processes.append(subprocess.Popen(argv, env={**env, **extra}, stdout=log, stderr=log))
        try:
            _wait_ready(port, self.processes)
        except RuntimeError as exc:
            self.stop()
            raise RuntimeError(f"{name}: {exc}\n{self.log.read_text()[-3000:]}") from None

    def pids(self) -> list[int]:
        """Every process of the server: the started ones and their descendants."""
        parents: dict[int, int] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
        found = [p.pid for p in self.processes]
        for pid in found:
            found.extend(child for child, parent in parents.items() if parent == pid and child not in found)
        return found

    def cpu_seconds(self) -> float:
        tick = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / tick
        return total

    def memory_mb(self) -> tuple[float, float]:
        """RSS and PSS (shared pages split between the processes that share them) over all processes."""
        rss = pss = 0
        for pid in self.pids():
            try:
                text = Path(f"/proc/{pid}/smaps_rollup").read_text()
            except OSError:
                continue
            rss += int(re.search(r"^Rss:\s+(\d+)", text, re.MULTILINE).group(1))
            pss += int(re.search(r"^Pss:\s+(\d+)", text, re.MULTILINE).group(1))
        return rss / 1024, pss / 1024

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(port: int, processes: list, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"{process.args[:4]} exited with {process.returncode}")
        try:
            if _ping(port, timeout=1) is not None:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"no server answered /ping on port {port}")


# --------------------------------------------------------------------------- HTTP client
def _request(port: int, body: bytes, close: bool) -> bytes:
    return (
        f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{'Connection: close' + chr(13) + chr(10) if close else ''}\r\n"
    ).encode() + body


def _read_response(sock: socket.socket, buffer: bytes = b"") -> tuple[int, bytes]:
    """Reads one response to the last byte of its body; returns its status and what follows it."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed before the response")
        buffer += chunk
    head, rest = buffer.split(b"\r\n\r\n", 1)
    length = int(re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head).group(1))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed in the body")
        rest += chunk
    return int(head.split(b" ", 2)[1]), rest[length:]


def _ping(port: int, timeout: float = 2.0) -> float | None:
    """Seconds for GET /ping on a new connection, to the last byte; None if not a 200."""
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        status, _ = _read_response(sock)
    return time.perf_counter() - started if status == 200 else None


def _python_client(port: int, request: bytes, close: bool, deadline: float, queue) -> None:
    latencies, sock, buffer = [], None, b""
    while time.perf_counter() < deadline:
        if sock is None:
            sock = socket.create_connection(("127.0.0.1", port))
        started = time.perf_counter()
        sock.sendall(request)
        status, buffer = _read_response(sock, buffer)
        latencies.append(time.perf_counter() - started)
        if status != 200:
            raise RuntimeError(f"status {status}")
        if close:
            sock.close()
            sock, buffer = None, b""
    queue.put(latencies)


def load_python(port: int, body: bytes, seconds: float, connections: int, close: bool) -> dict:
    """Fallback without wrk: one closed-loop client process per connection (these need much more
    CPU than wrk, taken from the servers on the same cores, so every number is lower)."""
    queue = multiprocessing.Queue()
    deadline = time.perf_counter() + seconds
    clients = [
        multiprocessing.Process(target=_python_client, args=(port, _request(port, body, close), close, deadline, queue))
        for _ in range(connections)
    ]
    started = time.perf_counter()
    for client in clients:
        client.start()
    latencies = sorted(x for _ in clients for x in queue.get())
    for client in clients:
        client.join()
    elapsed = time.perf_counter() - started
    return {
        "rps": len(latencies) / elapsed,
        "requests": len(latencies),
        "p50_ms": 1e3 * latencies[len(latencies) // 2],
        "p99_ms": 1e3 * latencies[int(len(latencies) * 0.99)],
    }


WRK_SCRIPT = """
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
if os.getenv("BENCH_CLOSE") == "1" then wrk.headers["Connection"] = "close" end
"""


def _wrk_ms(text: str, label: str) -> float:
    value, unit = re.search(rf"^\s+{label}\s+([0-9.]+)(us|ms|s)\s*$", text, re.MULTILINE).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def load_wrk(wrk: str, port: int, body: bytes, seconds: float, connections: int, close: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        script, body_file = Path(tmp) / "post.lua", Path(tmp) / "body.json"
        script.write_text(WRK_SCRIPT)
        body_file.write_bytes(body)
        result = subprocess.run(
            [wrk, "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", str(script)]
            + [f"http://127.0.0.1:{port}/invocations"],
            env={**os.environ, "BENCH_BODY": str(body_file), "BENCH_CLOSE": "1" if close else "0"},
            capture_output=True,
            text=True,
            check=True,
        )
    out = result.stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw error responses:\n{out}")
    return {
        "rps": float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1)),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "p50_ms": _wrk_ms(out, "50%"),
        "p99_ms": _wrk_ms(out, "99%"),
        "socket_errors": (re.search(r"Socket errors:.*", out) or [""])[0],
    }


def _probe(port: int, seconds: float, queue) -> None:
    latencies, deadline = [], time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        try:
            latencies.append(_ping(port) or 2.0)
        except OSError:
            latencies.append(2.0)
        time.sleep(0.01)
    queue.put(latencies)


def _p99_ms(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return 1e3 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def ping_while_uploads_stall(port: int, stalled: int, pings: int = 100) -> float:
    """p99 of /ping (ms; 2000 = no answer in 2 s) while ``stalled`` clients hold half-sent bodies."""
    holders = []
    try:
        for _ in range(stalled):
            sock = socket.create_connection(("127.0.0.1", port))
            head = (
                b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 9999\r\n\r\n"
            )
            sock.sendall(head + b"[[" + b"1," * 1000)  # 2,002 of 9,999 bytes, then nothing
            holders.append(sock)
        time.sleep(0.2)
        latencies = []
        for _ in range(pings):
            try:
                latencies.append(_ping(port) or 2.0)
            except OSError:
                latencies.append(2.0)
            time.sleep(0.005)
        return _p99_ms(latencies)
    finally:
        for sock in holders:
            sock.close()


# --------------------------------------------------------------------------- the floor
def in_process(model, body: bytes, seconds: float = 2.0) -> dict:
    """parse + predict + encode back to back in this process: the work every server must do."""
    import orjson
    import team_model
    from mlops_runtime import payload

    def once():
        X = payload.parse(body, "application/json", team_model.FEATURES, 10_000)
        return orjson.dumps(team_model.predict(model, X))

    for _ in range(50):
        once()
    latencies, deadline = [], time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        once()
        latencies.append(time.perf_counter() - started)
    latencies.sort()
    mean = sum(latencies) / len(latencies)
    return {
        "rps": 1 / mean,  # one core
        "p50_ms": 1e3 * latencies[len(latencies) // 2],
        "p99_ms": 1e3 * latencies[int(len(latencies) * 0.99)],
        "cpu_ms_per_request": 1e3 * mean,
    }


# --------------------------------------------------------------------------- orchestration
def _prepare_model(root: Path) -> None:
    from mlops_runtime import train
    from mlops_runtime.paths import MLPaths
    from team_model import data

    data.write_dataset(root / "input" / "data")
    train.run(MLPaths(root))


def run(args) -> dict:
    import numpy as np
    import team_model
    from mlops_runtime.serve import cpu_count
    from team_model import data

    workers = cpu_count()
    wrk = shutil.which("wrk") if args.load_generator != "python" else None
    if args.load_generator == "wrk" and not wrk:
        raise SystemExit("wrk is not installed (apt-get install wrk)")

    def load(port, body, close):
        if wrk:
            return load_wrk(wrk, port, body, args.duration, args.connections, close)
        return load_python(port, body, args.duration, args.connections, close)

    results: dict = {"setup": {"cores": workers, "workers": workers, "load_generator": "wrk" if wrk else "python"}}
    with tempfile.TemporaryDirectory(prefix="serving-bench-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)  # nginx's worker processes drop root: they must reach the unix socket
        _prepare_model(root)
        model = team_model.load(root / "model")
        X, _ = data.generate(100, seed=7)
        bodies = {n: json.dumps(np.asarray(X[:n]).tolist()).encode() for n in SIZES}
        env = {
            **os.environ,
            "MLOPS_ML_ROOT": str(root),
            "PYTHONPATH": os.pathsep.join([str(TEMPLATE_SRC), str(Path(__file__).parent)]),
            "MLOPS_SERVE_HOST": "127.0.0.1",
            "MLOPS_MODEL_NAME": "bench",
            "MLOPS_MODEL_VERSION": "0.0.0",
            "SAGEMAKER_MODEL_SERVER_WORKERS": str(workers),
            # One math thread per worker process, as the template's serve sets for itself.
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
        commands = server_commands(workers, root)
        selected = [name for name in commands if not args.servers or name in args.servers]
        servers: dict[str, Server] = {}
        try:
            for name in selected:  # all up for the whole run, measured in turns
                port = _free_port()
                servers[name] = Server(name, commands[name](port), env, port)
            for n in SIZES:
                results.setdefault("in-process", {})[n] = in_process(model, bodies[n])
                for mode in MODES:
                    close = mode == "new connection"
                    windows: dict[str, list] = {name: [] for name in servers}
                    for server in servers.values():  # warm-up: every worker has answered
                        _warm(server.port, bodies[n])
                    for _ in range(args.rounds):
                        for name, server in servers.items():
                            queue = multiprocessing.Queue()
                            prober = None
                            if not close:
                                prober = multiprocessing.Process(
                                    target=_probe, args=(server.port, args.duration, queue)
                                )
                                prober.start()
                            before = server.cpu_seconds()
                            window = load(server.port, bodies[n], close)
                            spent = server.cpu_seconds() - before
                            if prober:
                                window["ping_p99_ms"] = _p99_ms(queue.get())
                                prober.join()
                            window["cpu_ms_per_request"] = 1e3 * spent / max(1, window["requests"])
                            windows[name].append(window)
                    for name, runs in windows.items():
                        median = sorted(runs, key=lambda w: w["rps"])[len(runs) // 2]
                        results.setdefault(name, {}).setdefault(mode, {})[n] = median
            for name, server in servers.items():
                rss, pss = server.memory_mb()
                results[name]["memory"] = {"rss_mb": rss, "pss_mb": pss}
                results[name]["ping_p99_ms_while_uploads_stall"] = ping_while_uploads_stall(server.port, workers)
        finally:
            for server in servers.values():
                server.stop()
    results["setup"]["load_average_at_end"] = os.getloadavg()[0]
    return results


def _warm(port: int, body: bytes, count: int = 200) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        buffer = b""
        for _ in range(count):
            sock.sendall(_request(port, body, close=False))
            status, buffer = _read_response(sock, buffer)
            if status != 200:
                raise RuntimeError(f"warm-up of port {port} got {status}")


def report(results: dict, args) -> None:
    setup = results["setup"]
    servers = [k for k in results if k not in ("setup", "in-process")]
    print(
        f"\n{setup['cores']} cores, {setup['workers']} worker processes per server, {setup['load_generator']}, "
        f"{args.connections} connections, median of {args.rounds} windows of {args.duration:g} s per server; "
        f"load average at the end {setup['load_average_at_end']:.2f}\n"
    )
    print(
        "| server | mode | records | requests/s | p50 ms | p99 ms | server CPU ms/request | /ping p99 ms under load |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for mode in MODES:
        for n in SIZES:
            for name in servers:
                r = results[name][mode][n]
                ping = f"{r['ping_p99_ms']:.2f}" if "ping_p99_ms" in r else ""
                print(
                    f"| {name} | {mode} | {n} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} "
                    f"| {r['cpu_ms_per_request']:.3f} | {ping} |"
                )
    for n in SIZES:
        r = results["in-process"][n]
        print(
            f"| in-process (1 core) | - | {n} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} "
            f"| {r['cpu_ms_per_request']:.3f} | |"
        )
    print("\n| server | RSS MB | PSS MB | /ping p99 ms while uploads stall |")
    print("|---|---:|---:|---:|")
    for name in servers:
        memory = results[name]["memory"]
        print(
            f"| {name} | {memory['rss_mb']:.0f} | {memory['pss_mb']:.0f} "
            f"| {results[name]['ping_p99_ms_while_uploads_stall']:.2f} |"
        )
    baselines = [name for name in servers if not name.startswith("template")]
    if "template" in results and baselines:
        print()
        for n in SIZES:
            ours = results["template"]["keep-alive"][n]
            best = max(baselines, key=lambda name: results[name]["keep-alive"][n]["rps"])
            theirs = results[best]["keep-alive"][n]
            print(
                f"keep-alive, {n} record(s): template {ours['rps'] / theirs['rps']:.2f}x the requests/s of the "
                f"best baseline ({best}); p99 {ours['p99_ms']:.2f} ms against {theirs['p99_ms']:.2f} ms"
            )


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per load window")
    parser.add_argument("--rounds", type=int, default=3, help="windows per server, size and mode")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--servers", nargs="*", help="only these (names as in the table)")
    parser.add_argument("--load-generator", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    _in_own_venv(argv)
    sys.path.insert(0, str(TEMPLATE_SRC))
    results = run(args)
    report(results, args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
