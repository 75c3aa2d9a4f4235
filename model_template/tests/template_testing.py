"""Helpers for the template tests: run entry points as processes, start and talk to a server.

(Named uniquely, not conftest, so that `from ... import` cannot pick up another repo's conftest.)
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[1]
SRC = TEMPLATE / "src"
if str(SRC) not in sys.path:  # also when the platform repo runs these tests from its own root
    sys.path.insert(0, str(SRC))

MANIFEST = {
    "MLOPS_MODEL_NAME": "process-events--classifier",
    "MLOPS_MODEL_VERSION": "1.4.2+r3",
    "MLOPS_TRAINING_DATA": "s3://data-bucket/process-events/classifier/training/",
    "MLOPS_TRAINED_AT": "2026-11-25T16:00:00+00:00",
    "MLOPS_SOURCE_COMMIT": "0123abcd",
}


def entry_point_env(root: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "SAGEMAKER_"))}
    env.update(MLOPS_ML_ROOT=str(root), PYTHONPATH=str(SRC), **extra)
    return env


def run_entry_point(
    command: str, root: Path, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess:
    """``python -m mlops_runtime COMMAND``: the same ``main`` the image's ``train``/``evaluate`` run."""
    return subprocess.run(
        [sys.executable, "-m", "mlops_runtime", command],
        env=entry_point_env(root, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_hyperparameters(root: Path, values: dict) -> None:
    path = root / "input" / "config" / "hyperparameters.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values))


def copy_sample_data(root: Path) -> None:
    from team_model import data

    data.write_dataset(root / "input" / "data")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    process: subprocess.Popen
    port: int
    log: Path

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    def post_json(self, document, **headers) -> tuple[int, dict, dict]:
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        status, response_headers, raw = self.request(
            "POST", "/invocations", body, {"Content-Type": "application/json", **headers}
        )
        return status, response_headers, json.loads(raw)

    def log_text(self) -> str:
        return self.log.read_text()


def start_server(root: Path, log: Path, cpus: set[int] | None = None, **env: str) -> Server:
    """``serve`` on a free loopback port; ``cpus`` pins it (and so its workers) to those cores, as a
    container's cpuset would."""
    port = free_port()
    handle = log.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlops_runtime", "serve"],
        env=entry_point_env(root, MLOPS_SERVE_HOST="127.0.0.1", SAGEMAKER_BIND_TO_PORT=str(port), **env),
        stdout=handle,
        stderr=subprocess.STDOUT,
        preexec_fn=None if cpus is None else lambda: os.sched_setaffinity(0, cpus),
    )
    server = Server(process, port, log)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            if server.request("GET", "/ping")[0] == 200:
                return server
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError(f"serve did not answer /ping within 90 s:\n{log.read_text()}")


def loaded_workers(server: Server, count: int, timeout: float = 60) -> list[str]:
    """The pids of the workers that logged loading the model, once ``count`` have (or ``timeout``
    passed): ``/ping`` answers as soon as the first worker is up, the others may still be loading."""
    deadline = time.monotonic() + timeout
    while True:
        loaded = re.findall(r"model loaded from .* in worker pid=(\d+)", server.log_text())
        if len(loaded) >= count or time.monotonic() > deadline:
            return loaded
        time.sleep(0.1)


def stop_server(server: Server) -> int:
    server.process.terminate()
    try:
        return server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()
        return server.process.wait()


# -- drift check ----------------------------------------------------------------------------------
CAPTURE_ENDPOINT = "mlops-dev-process-events--classifier"
SHIFTED_FEATURES = ("cmdline_length", "network_connections")


def traffic(rows: int, seed: int, shifted: bool = False):
    """Process events drawn as the training data is; ``shifted`` moves SHIFTED_FEATURES (longer
    command lines, more connections), the drift the check must find."""
    from team_model import data, schema

    X, _ = data.generate(rows, seed)
    if shifted:
        X[:, schema.FEATURES.index("cmdline_length")] *= 3
        X[:, schema.FEATURES.index("network_connections")] += 6
    return X


def capture_line(row, when, style: str = "csv") -> bytes:
    """One invocation in SageMaker's data-capture format (local_aws/sagemaker/data_capture.py)."""
    import base64

    from team_model import schema

    values = [int(v) if float(v).is_integer() else round(float(v), 4) for v in row]
    if style == "csv":
        content_type, encoding, text = "text/csv", "CSV", ",".join(map(str, values))
    elif style == "json":
        content_type, encoding = "application/json", "JSON"
        text = json.dumps(dict(zip(schema.FEATURES, values, strict=True)))
    else:  # a content type captured without CaptureContentTypeHeader: base64
        content_type, encoding = "application/json", "BASE64"
        text = base64.b64encode(json.dumps({"instances": [values]}).encode()).decode()
    record = {
        "captureData": {
            "endpointInput": {
                "observedContentType": content_type,
                "mode": "INPUT",
                "data": text,
                "encoding": encoding,
            },
            "endpointOutput": {
                "observedContentType": "application/json",
                "mode": "OUTPUT",
                "data": '{"predictions": ["benign"]}',
                "encoding": "JSON",
            },
        },
        "eventMetadata": {"eventId": "0", "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%SZ")},
        "eventVersion": "0",
    }
    return json.dumps(record).encode() + b"\n"


def write_captures(
    source: Path, X, start, variant: str = "AllTraffic", per_file: int = 1000, styles=("csv",)
):
    """``X``'s rows as captured invocations one second apart from ``start``, in SageMaker's key
    layout ``<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl``."""
    from datetime import timedelta

    lines: dict[Path, list[bytes]] = {}
    for index, row in enumerate(X):
        when = start + timedelta(seconds=index)
        folder = source / CAPTURE_ENDPOINT / variant / when.strftime("%Y/%m/%d/%H")
        path = folder / f"{index // per_file:06d}.jsonl"
        lines.setdefault(path, []).append(capture_line(row, when, styles[index % len(styles)]))
    for path, chunk in lines.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"".join(chunk))
    return len(lines)


def write_baseline(folder: Path) -> None:
    """The sample training data's statistics.json and constraints.json (threshold 0.1) in ``folder``."""
    import team_model
    from mlops_runtime import baseline
    from team_model import data

    X, _ = data.generate(data.TRAIN_ROWS)
    stats = baseline.statistics(team_model.FEATURES, X)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "statistics.json").write_text(json.dumps(stats))
    (folder / "constraints.json").write_text(json.dumps(baseline.constraints(stats, 0.1)))


def monitor_environment(folder: Path, baseline_dir: Path, start, end, publish: bool) -> dict[str, str]:
    """Model Monitor's container-contract environment for ``monitor``: captures in
    ``folder/endpointdata``, reports to ``folder/resultdata``."""
    capture_format = {"sagemakerCaptureJson": {"captureIndexNames": ["endpointInput", "endpointOutput"]}}
    return {
        "dataset_format": json.dumps(capture_format),
        "dataset_source": str(folder / "endpointdata"),
        "output_path": str(folder / "resultdata"),
        "baseline_statistics": str(baseline_dir / "statistics.json"),
        "baseline_constraints": str(baseline_dir / "constraints.json"),
        "start_time": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end_time": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sagemaker_endpoint_name": CAPTURE_ENDPOINT,
        "sagemaker_monitoring_schedule_name": "process-events--classifier-drift",
        "publish_cloudwatch_metrics": "Enabled" if publish else "Disabled",
        "MLOPS_CAPTURE_VARIANTS": "AllTraffic",
    }
