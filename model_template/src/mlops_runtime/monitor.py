"""``monitor``: the drift check, a SageMaker Model Monitor bring-your-own container.

Started as a processing job (by the platform's Drift Check DAG, or by a Model Monitor schedule)
with the documented container contract ("Container Contract Inputs"/"Outputs", "CloudWatch Metrics
for Bring Your Own Containers"):

- environment: ``dataset_format`` (``{"sagemakerCaptureJson": {"captureIndexNames":
  ["endpointInput", ...]}}``), ``dataset_source`` (the captured data, laid out as
  ``<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl``), ``output_path``, ``baseline_statistics``,
  ``baseline_constraints`` (local paths of the baseline files), ``start_time`` and ``end_time``
  (the window: the source may hold more, only records whose ``inferenceTime`` is in
  [start_time, end_time) count), ``sagemaker_endpoint_name``, ``sagemaker_monitoring_schedule_name``,
  ``publish_cloudwatch_metrics`` (Enabled/Disabled);
- ``MLOPS_CAPTURE_VARIANTS`` (this template's addition, comma-separated): the production variants
  whose captures count. A shadow variant captures copies of production's requests under its own
  name; counting them would weigh those requests twice. Unset: every variant in the source.

It parses each captured request's ``endpointInput`` with the serving schema (``serve``'s parser:
JSON, JSON Lines and CSV, base64 or text), computes the traffic's statistics, compares each feature
with the baseline (``baseline.compare``: Model Monitor's baseline_drift_check) and writes
``statistics.json`` and ``constraint_violations.json`` to ``output_path``, and, when publishing is
enabled, the per-feature ``feature_baseline_drift_<feature>`` metrics as JSON lines to
``/opt/ml/output/metrics/cloudwatch/`` (Model Monitor publishes from there) and the same lines to
``output_path/cloudwatch_metrics.jsonl`` (a plain processing job uploads only its outputs: the
platform's DAG publishes from that copy). Requests the server would refuse are skipped and counted.
On error the reason goes to ``output/message`` and the exit code is 1.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson

import team_model
from mlops_runtime import baseline, contract, failure, payload
from mlops_runtime.paths import MLPaths

CAPTURE_VARIANTS_ENV = contract.CAPTURE_VARIANTS_ENV
CAPTURE_FORMAT = "sagemakerCaptureJson"
ENDPOINT_INPUT = "endpointInput"
METRICS_COPY_FILE = contract.METRICS_COPY_FILE
MAX_RECORDS_PER_REQUEST = 1_000_000  # captured requests were already bounded by the server's limit
_TIME_KEY = slice(0, 19)  # "YYYY-MM-DDTHH:MM:SS": sortable as text


class MonitorError(ValueError):
    """The job's inputs cannot be used; the message says which and why."""


def _timestamp(name: str, text: str | None) -> datetime:
    if not text:
        raise MonitorError(f"environment variable {name} is not set")
    try:
        # The contract's example writes "2019-12-01T16: 20: 00Z": tolerate its spaces.
        when = datetime.fromisoformat(text.replace(" ", "").replace("Z", "+00:00"))
    except ValueError:
        raise MonitorError(f"{name}={text!r} is not an ISO 8601 time") from None
    return when.replace(tzinfo=when.tzinfo or UTC).astimezone(UTC)


@dataclass(frozen=True)
class MonitorInputs:
    dataset_source: Path
    output_path: Path
    baseline_statistics: Path
    baseline_constraints: Path
    start_time: datetime
    end_time: datetime
    endpoint_name: str
    schedule_name: str
    publish_metrics: bool
    variants: tuple[str, ...]

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> MonitorInputs:
        env = dict(os.environ if env is None else env)
        missing = [
            name
            for name in ("dataset_source", "output_path", "baseline_statistics", "baseline_constraints")
            if not env.get(name)
        ]
        if missing:
            raise MonitorError(
                f"environment variable(s) {', '.join(missing)} not set (Model Monitor's contract)"
            )
        data_format = env.get("dataset_format")
        if data_format:
            try:
                indexes = orjson.loads(data_format)[CAPTURE_FORMAT]["captureIndexNames"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                raise MonitorError(
                    f"dataset_format={data_format!r}: this check reads endpoint captures "
                    f'({{"{CAPTURE_FORMAT}": {{"captureIndexNames": ["{ENDPOINT_INPUT}"]}}}})'
                ) from None
            if ENDPOINT_INPUT not in indexes:
                raise MonitorError(f"dataset_format must include {ENDPOINT_INPUT}: the check compares inputs")
        start, end = (
            _timestamp("start_time", env.get("start_time")),
            _timestamp("end_time", env.get("end_time")),
        )
        if end <= start:
            raise MonitorError(f"end_time {end.isoformat()} is not after start_time {start.isoformat()}")
        return cls(
            dataset_source=Path(env["dataset_source"]),
            output_path=Path(env["output_path"]),
            baseline_statistics=Path(env["baseline_statistics"]),
            baseline_constraints=Path(env["baseline_constraints"]),
            start_time=start,
            end_time=end,
            endpoint_name=env.get("sagemaker_endpoint_name", ""),
            schedule_name=env.get("sagemaker_monitoring_schedule_name", ""),
            publish_metrics=env.get("publish_cloudwatch_metrics", "Disabled") == "Enabled",
            variants=tuple(v.strip() for v in env.get(CAPTURE_VARIANTS_ENV, "").split(",") if v.strip()),
        )


def capture_files(source: Path, variants: tuple[str, ...]) -> list[Path]:
    """The .jsonl files under ``source`` (``<endpoint>/<variant>/yyyy/mm/dd/hh/``), only the named
    variants' when ``variants`` is given."""
    files = sorted(p for p in source.rglob("*.jsonl") if p.is_file())
    if not variants:
        return files
    # The variant is the folder four levels above the file (variant/yyyy/mm/dd/hh/file).
    return [p for p in files if len(p.relative_to(source).parts) >= 6 and p.parents[4].name in variants]


@dataclass
class Traffic:
    matrix: np.ndarray
    requests: int
    skipped: int  # captured requests outside the window
    refused: int  # requests the server's parser refuses (answered 4xx; they carry no features)


def _request_rows(record: dict) -> np.ndarray:
    captured = record["captureData"][ENDPOINT_INPUT]
    data = captured["data"]
    body = base64.b64decode(data) if captured.get("encoding") == "BASE64" else data.encode()
    return payload.parse(
        body, captured.get("observedContentType"), team_model.FEATURES, MAX_RECORDS_PER_REQUEST
    )


def read_traffic(files: list[Path], start: datetime, end: datetime) -> Traffic:
    first, last = start.strftime("%Y-%m-%dT%H:%M:%S"), end.strftime("%Y-%m-%dT%H:%M:%S")
    blocks: list[np.ndarray] = []
    requests = skipped = refused = 0
    for path in files:
        for line in path.read_bytes().splitlines():
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
                when = record["eventMetadata"]["inferenceTime"][_TIME_KEY]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                refused += 1
                continue
            if not first <= when < last:
                skipped += 1
                continue
            try:
                blocks.append(_request_rows(record))
            except (payload.PayloadError, KeyError, TypeError, ValueError):
                refused += 1
                continue
            requests += 1
    matrix = np.concatenate(blocks) if blocks else np.empty((0, len(team_model.FEATURES)))
    return Traffic(matrix, requests, skipped, refused)


def metric_lines(inputs: MonitorInputs, distances: dict[str, float]) -> list[dict]:
    """The BYOC contract's CloudWatch metrics: one ``feature_baseline_drift_<feature>`` per feature,
    dimensions Endpoint and MonitoringSchedule, at the window's end."""
    dimensions = [
        {"Name": "Endpoint", "Value": inputs.endpoint_name},
        {"Name": "MonitoringSchedule", "Value": inputs.schedule_name},
    ]
    when = inputs.end_time.strftime("%Y-%m-%dT%H:%M:%SZ")
    return [
        {
            "MetricName": contract.feature_drift_metric(name),
            "Timestamp": when,
            "Dimensions": dimensions,
            "Value": value,
            "Unit": "None",
        }
        for name, value in distances.items()
    ]


def _write_json(path: Path, document: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")


def run(inputs: MonitorInputs, paths: MLPaths) -> dict:
    started = time.perf_counter()
    try:
        baseline_stats = json.loads(inputs.baseline_statistics.read_text())
        baseline_constraints = json.loads(inputs.baseline_constraints.read_text())
    except (OSError, ValueError) as exc:
        raise MonitorError(f"cannot read the baseline: {exc}") from None
    baseline.comparison_settings(baseline_constraints)  # refuse an unsupported method before reading
    files = capture_files(inputs.dataset_source, inputs.variants) if inputs.dataset_source.is_dir() else []
    traffic = read_traffic(files, inputs.start_time, inputs.end_time)
    current = baseline.statistics(team_model.FEATURES, traffic.matrix)
    distances, violations = (
        baseline.compare(baseline_stats, baseline_constraints, current) if traffic.requests else ({}, [])
    )
    _write_json(inputs.output_path / contract.BASELINE_STATISTICS_FILE, current)
    _write_json(inputs.output_path / contract.VIOLATIONS_FILE, {"violations": violations})
    if inputs.publish_metrics and distances:
        lines = b"".join(orjson.dumps(m) + b"\n" for m in metric_lines(inputs, distances))
        for folder in (paths.cloudwatch_metrics, inputs.output_path):
            folder.mkdir(parents=True, exist_ok=True)
        (paths.cloudwatch_metrics / "metrics.jsonl").write_bytes(lines)
        (inputs.output_path / METRICS_COPY_FILE).write_bytes(lines)
    drifted = [v["feature_name"] for v in violations if v["constraint_check_type"] == baseline.DRIFT_CHECK]
    print(
        f"checked {traffic.matrix.shape[0]} records in {traffic.requests} requests from {len(files)} files "
        f"({traffic.skipped} outside the window, {traffic.refused} refused) in "
        f"{time.perf_counter() - started:.2f} s; drifted: {', '.join(drifted) or 'none'}",
        flush=True,
    )
    return {"records": int(traffic.matrix.shape[0]), "distances": distances, "violations": violations}


def main() -> None:
    paths = MLPaths.from_env()
    failure.stop_on_sigterm()
    try:
        run(MonitorInputs.from_env(), paths)
    except (Exception, failure.Stopped) as exc:  # noqa: BLE001  # pylint: disable=broad-exception-caught  # a readable ExitMessage
        sys.exit(failure.report(exc, paths.processing_message, "drift check"))


if __name__ == "__main__":
    main()
