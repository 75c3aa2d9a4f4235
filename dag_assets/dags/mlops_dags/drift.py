"""Drift monitoring's tasks: the endpoint's monitoring schedule (Deployment DAG) and the drift check
(Drift Check DAG), as plain functions of plain values.

SageMaker Model Monitor is "no longer open to new customers", so no CreateMonitoringSchedule: the
check runs the serving model's own image as a Model Monitor bring-your-own container (its
``monitor`` entry point, with the documented container contract: inputs as environment variables,
outputs statistics.json, constraint_violations.json and the CloudWatch metrics), started as a
SageMaker processing job by the Drift Check DAG on the schedule the Deployment DAG records
(mlops_core.drift.MonitoringSchedule). Each check covers the traffic captured since the previous
check's window: the capture objects of the endpoint's production variants (a shadow variant's
copies of the same requests would count twice) in the hour folders the window touches, listed in
a manifest (the processing input's ManifestFile type), so the job reads nothing else.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

from mlops_dags import aws, settings

log = logging.getLogger(__name__)

CHECK_ENTRYPOINT = ["monitor"]
ENDPOINT_DATA_DIR = "/opt/ml/processing/endpointdata"
BASELINE_STATISTICS_DIR = "/opt/ml/processing/baseline/statistics"
BASELINE_CONSTRAINTS_DIR = "/opt/ml/processing/baseline/constraints"
RESULT_DIR = "/opt/ml/processing/resultdata"
MANIFEST_FILE = "capture-manifest.json"
CAPTURE_FORMAT = {"sagemakerCaptureJson": {"captureIndexNames": ["endpointInput", "endpointOutput"]}}
DRIFT_CHECK = "baseline_drift_check"
# An hourly DAG run starts a little after the hour: a window this much short of the interval is due.
DUE_TOLERANCE = timedelta(minutes=10)
_TIME = "%Y-%m-%dT%H:%M:%SZ"


def _load_config(project: str, model: str):
    from mlops_dags import training

    return training.load_config(project, model)


def _put_json(s3, uri: str, document: dict) -> None:
    bucket, key = aws.split_s3_uri(uri)
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(document, indent=2).encode(), ContentType="application/json")


def _read_json(s3, uri: str) -> dict | None:
    try:
        return aws.read_s3_json(s3, uri)
    except Exception as exc:
        if aws.error_code(exc) in {"NoSuchKey", "404", "NotFound"}:
            return None
        raise


# -- Deployment DAG -------------------------------------------------------------------------------
def record_schedule(release: dict) -> dict | None:
    """After the release serves: the endpoint's MonitoringSchedule (the serving model's image and
    baseline), when the model's drift check is enabled and its run wrote a baseline."""
    from mlops_core import names
    from mlops_core.drift import MonitoringSchedule
    from mlops_dags import training

    config = _load_config(release["project"], release["model"])
    uri = names.monitoring_schedule_uri(config.artifact_bucket, config.project, config.model)
    s3 = aws.client("s3")
    if not config.drift.enabled:
        log.info("drift checks are disabled for %s/%s: no monitoring schedule", config.project, config.model)
        return None
    statistics, constraints = training.baseline_files(config.run_output_uri(release["run_name"]))
    if _read_json(s3, constraints) is None:
        log.warning("%s has no drift baseline (%s): its endpoint is not checked", release["run_name"], constraints)
        return None
    schedule = MonitoringSchedule(
        project=config.project,
        model=config.model,
        endpoint_name=release["endpoint_name"],
        schedule_name=names.monitoring_schedule_name(config.project, config.model),
        model_version=release["model_version"],
        run_name=release["run_name"],
        image_uri=release["image_uri"],
        baseline_statistics_uri=statistics,
        baseline_constraints_uri=constraints,
        check_interval_hours=config.drift.check_interval_hours,
        # The next whole second: captures carry whole-second times, and the deployment's own smoke
        # request (just before) is not the endpoint's traffic.
        created_at=datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1),
    )
    document = json.loads(schedule.model_dump_json())
    _put_json(s3, uri, document)
    log.info("monitoring schedule of %s written to %s", release["endpoint_name"], uri)
    return document


# -- Drift Check DAG: planning ----------------------------------------------------------------------
def _hours(start: datetime, end: datetime):
    hour = start.replace(minute=0, second=0, microsecond=0)
    while hour < end:
        yield hour
        hour += timedelta(hours=1)


def production_variants(sm, endpoint_name: str) -> list[str] | None:
    """The endpoint's production variants (not its shadow variants), None without an endpoint."""
    from mlops_dags import deployment

    endpoint = deployment.describe_endpoint(sm, endpoint_name)
    if endpoint is None:
        return None
    return [v["VariantName"] for v in endpoint.get("ProductionVariants", [])]


def capture_keys(s3, capture_uri: str, endpoint: str, variants: list[str], start: datetime, end: datetime) -> list[str]:
    """Capture objects (keys relative to ``capture_uri``) of these variants in the hour folders
    ``<endpoint>/<variant>/yyyy/mm/dd/hh/`` the window [start, end) touches."""
    bucket, prefix = aws.split_s3_uri(capture_uri.rstrip("/") + "/")
    found = []
    paginator = s3.get_paginator("list_objects_v2")
    for variant in variants:
        for hour in _hours(start, end):
            folder = f"{prefix}{endpoint}/{variant}/{hour:%Y/%m/%d/%H}/"
            for page in paginator.paginate(Bucket=bucket, Prefix=folder):
                found += [o["Key"][len(prefix) :] for o in page.get("Contents", []) if o["Key"].endswith(".jsonl")]
    return found


def plan(params: dict | None, now: datetime | None = None) -> list[dict]:
    """The checks due now: every model with drift checks enabled and a monitoring schedule whose
    window since its last check is ``check_interval_hours`` long, or (conf ``project`` and
    optionally ``model``) the named models now. Each check's capture manifest is written to its
    folder; a check without captured objects has ``manifest_uri`` None and runs no job."""
    from mlops_core import names
    from mlops_core.drift import DriftCheckSummary, MonitoringSchedule
    from mlops_core.pipeline_config import list_pipeline_configs

    params = params or {}
    project, model = params.get("project"), params.get("model")
    if model and not project:
        raise ValueError("give the model's project too (conf project and model)")
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    window_end = now - timedelta(seconds=settings.capture_settle_seconds())
    s3, sm = aws.client("s3"), aws.client("sagemaker")
    checks = []
    for config in list_pipeline_configs(settings.dags_folder()):
        if (project and config.project != project) or (model and config.model != model):
            continue
        if not config.drift.enabled:
            continue
        bucket = config.artifact_bucket
        document = _read_json(s3, names.monitoring_schedule_uri(bucket, config.project, config.model))
        if document is None:
            log.info("%s/%s has no monitoring schedule (not deployed yet)", config.project, config.model)
            continue
        schedule = MonitoringSchedule.model_validate(document)
        last = _read_json(s3, names.drift_summary_uri(bucket, config.project, config.model))
        start = schedule.created_at
        if last is not None:
            previous = DriftCheckSummary.model_validate(last)
            start = max(start, previous.window_end)
        due = window_end - start >= timedelta(hours=schedule.check_interval_hours) - DUE_TOLERANCE
        if not (project or due) or window_end <= start:
            continue
        variants = production_variants(sm, schedule.endpoint_name)
        if variants is None:
            log.info("%s has no endpoint: not checked", schedule.endpoint_name)
            continue
        check_name = names.drift_check_name(config.project, config.model, now)
        folder = names.drift_check_uri(bucket, config.project, config.model, check_name)
        keys = capture_keys(s3, config.data_capture_uri, schedule.endpoint_name, variants, start, window_end)
        manifest_uri = folder + MANIFEST_FILE if keys else None
        if keys:
            _put_json_list(s3, manifest_uri, [{"prefix": config.data_capture_uri.rstrip("/") + "/"}, *keys])
        checks.append(
            {
                "project": config.project,
                "model": config.model,
                "environment": config.environment,
                "endpoint_name": schedule.endpoint_name,
                "schedule_name": schedule.schedule_name,
                "check_name": check_name,
                "check_uri": folder,
                "checked_at": now.strftime(_TIME),
                "window_start": start.strftime(_TIME),
                "window_end": window_end.strftime(_TIME),
                "model_version": schedule.model_version,
                "image_uri": schedule.image_uri,
                "baseline_statistics_uri": schedule.baseline_statistics_uri,
                "baseline_constraints_uri": schedule.baseline_constraints_uri,
                "variants": variants,
                "manifest_uri": manifest_uri,
                "captured_objects": len(keys),
            }
        )
        log.info("%s: window %s .. %s, %d capture objects", check_name, start, window_end, len(keys))
    return checks


def _put_json_list(s3, uri: str, document: list) -> None:
    bucket, key = aws.split_s3_uri(uri)
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(document).encode(), ContentType="application/json")


# -- Drift Check DAG: the job -------------------------------------------------------------------------
def check_request(check: dict, config) -> dict:
    """CreateProcessingJob's request: the serving image's ``monitor`` entry point with Model
    Monitor's container contract, on the window's capture objects (ManifestFile) and the baseline."""
    from mlops_core import names
    from mlops_dags.training import RUN_ID_TAG, processing_input, processing_request

    statistics_name = check["baseline_statistics_uri"].rsplit("/", 1)[-1]
    constraints_name = check["baseline_constraints_uri"].rsplit("/", 1)[-1]
    return processing_request(
        name=check["check_name"],
        image_uri=check["image_uri"],
        entrypoint=CHECK_ENTRYPOINT,
        config=config,
        inputs=[
            processing_input("endpointdata", check["manifest_uri"], ENDPOINT_DATA_DIR, "ManifestFile"),
            processing_input("baseline_statistics", check["baseline_statistics_uri"], BASELINE_STATISTICS_DIR),
            processing_input("baseline_constraints", check["baseline_constraints_uri"], BASELINE_CONSTRAINTS_DIR),
        ],
        outputs=[("result", check["check_uri"], RESULT_DIR)],
        # Model Monitor's container contract ("Container Contract Inputs").
        environment={
            "dataset_format": json.dumps(CAPTURE_FORMAT),
            "dataset_source": ENDPOINT_DATA_DIR,
            "output_path": RESULT_DIR,
            "baseline_statistics": f"{BASELINE_STATISTICS_DIR}/{statistics_name}",
            "baseline_constraints": f"{BASELINE_CONSTRAINTS_DIR}/{constraints_name}",
            "start_time": check["window_start"],
            "end_time": check["window_end"],
            "sagemaker_endpoint_name": check["endpoint_name"],
            "sagemaker_monitoring_schedule_name": check["schedule_name"],
            "publish_cloudwatch_metrics": "Enabled",
            names.DRIFT_CAPTURE_VARIANTS_ENV: ",".join(check["variants"]),
        },
        tags=[
            {"Key": RUN_ID_TAG, "Value": check["airflow_run_id"][:256]},
            {"Key": "mlops:project", "Value": check["project"]},
            {"Key": "mlops:model", "Value": check["model"]},
        ],
    )


# -- Drift Check DAG: the verdict ---------------------------------------------------------------------
def _summary_statistics(feature: dict | None) -> dict[str, float]:
    numbers = (feature or {}).get("numerical_statistics") or {}
    return {k: float(numbers[k]) for k in ("mean", "std_dev", "min", "max") if k in numbers}


def _read_lines(s3, uri: str) -> list[dict]:
    bucket, key = aws.split_s3_uri(uri)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:
        if aws.error_code(exc) in {"NoSuchKey", "404", "NotFound"}:
            return []
        raise
    return [json.loads(line) for line in body.splitlines() if line.strip()]


def summarize(check: dict) -> dict:
    """The check's DriftCheckSummary from its reports, written to its folder and as the model's
    newest (drift_summary_uri); when conclusive (at least ``min_records`` records), the per-feature
    metrics (Model Monitor's namespace and names) and the number of drifted features (what the
    drift alarm watches) published to CloudWatch."""
    from mlops_core import names
    from mlops_core.drift import DriftCheckSummary, FeatureDrift
    from mlops_dags import retraining

    config = _load_config(check["project"], check["model"])
    s3 = aws.client("s3")
    folder = check["check_uri"]
    if check["manifest_uri"]:
        job = aws.client("sagemaker").describe_processing_job(ProcessingJobName=check["check_name"])
        if job["ProcessingJobStatus"] != "Completed":
            raise RuntimeError(f"drift check {check['check_name']} is {job['ProcessingJobStatus']}: no verdict")
        current = _read_json(s3, folder + names.BASELINE_STATISTICS_FILE) or {}
        violations = (_read_json(s3, folder + names.VIOLATIONS_FILE) or {}).get("violations", [])
        metrics = _read_lines(s3, folder + names.DRIFT_METRICS_COPY_FILE)
    else:
        current, violations, metrics = {}, [], []
    records = int((current.get("dataset") or {}).get("item_count", 0))
    conclusive = records >= config.drift.min_records
    baseline = _read_json(s3, check["baseline_statistics_uri"]) or {}
    constraints = _read_json(s3, check["baseline_constraints_uri"]) or {}
    threshold = float(
        ((constraints.get("monitoring_config") or {}).get("distribution_constraints") or {}).get(
            "comparison_threshold", config.drift.comparison_threshold
        )
    )
    distances = {m["MetricName"].removeprefix(names.feature_drift_metric("")): float(m["Value"]) for m in metrics}
    base_features = {f["name"]: f for f in baseline.get("features", [])}
    current_features = {f["name"]: f for f in current.get("features", [])}
    drifted = [
        FeatureDrift(
            name=v["feature_name"],
            distance=distances.get(v["feature_name"], 0.0),
            threshold=threshold,
            baseline=_summary_statistics(base_features.get(v["feature_name"])),
            current=_summary_statistics(current_features.get(v["feature_name"])),
        )
        for v in violations
        if v.get("constraint_check_type") == DRIFT_CHECK
    ]
    summary = DriftCheckSummary(
        project=check["project"],
        model=check["model"],
        endpoint_name=check["endpoint_name"],
        schedule_name=check["schedule_name"],
        check_name=check["check_name"],
        checked_at=check["checked_at"],
        window_start=check["window_start"],
        window_end=check["window_end"],
        records=records,
        model_version=check["model_version"],
        image_tag=retraining.image_tag(check["image_uri"]),
        drifted=drifted if conclusive else [],
        conclusive=conclusive,
        report_uri=folder + names.BASELINE_STATISTICS_FILE,
        violations_uri=folder + names.VIOLATIONS_FILE,
        cool_down_hours=config.drift.cool_down_hours,
    )
    # The summary first: the drift alarm fires on the metric published next, and what it starts
    # (the trigger Lambda) reads this summary.
    document = json.loads(summary.model_dump_json())
    _put_json(s3, folder + names.DRIFT_SUMMARY_FILE, document)
    _put_json(s3, names.drift_summary_uri(config.artifact_bucket, config.project, config.model), document)
    if conclusive:
        _publish(check, metrics, len(summary.drifted))
    else:
        log.info("%s: %d records, fewer than %d: no verdict", check["check_name"], records, config.drift.min_records)
    log.info("%s: %d records, drifted: %s", check["check_name"], records, ", ".join(summary.drifted_features) or "none")
    return document


def _publish(check: dict, metrics: list[dict], drifted: int) -> None:
    from mlops_core import names

    cloudwatch = aws.client("cloudwatch")
    when = datetime.strptime(check["window_end"], _TIME).replace(tzinfo=UTC)
    features = [
        {
            "MetricName": m["MetricName"],
            "Timestamp": when,
            "Dimensions": m["Dimensions"],
            "Value": float(m["Value"]),
            "Unit": m.get("Unit", "None"),
        }
        for m in metrics
    ]
    for start in range(0, len(features), 500):  # PutMetricData takes at most 1,000 values a call
        cloudwatch.put_metric_data(Namespace=names.DRIFT_METRICS_NAMESPACE, MetricData=features[start : start + 500])
    dimensions = names.model_metric_dimensions(check["environment"], check["project"], check["model"])
    cloudwatch.put_metric_data(
        Namespace=names.MODEL_METRICS_NAMESPACE,
        MetricData=[
            {
                "MetricName": names.DRIFTED_FEATURES_METRIC,
                "Timestamp": when,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
                "Value": float(drifted),
                "Unit": "Count",
            }
        ],
    )
