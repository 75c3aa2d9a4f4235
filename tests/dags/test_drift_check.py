"""Drift checking, end to end on real jobs: a local AWS whose SageMaker runs the model template's own
entry points (train, evaluate with the baseline, serve, and monitor: the Model Monitor
bring-your-own container) as processes. The Training & Evaluation DAG registers the training data's
baseline as the package's DriftCheckBaselines, the Deployment DAG records the endpoint's monitoring
schedule, traffic sent to the endpoint is captured, and the Drift Check DAG checks the traffic since
its last check: unshifted traffic drifts in no feature, shifted traffic in exactly the shifted ones,
with Model Monitor's per-feature metrics, the DriftedFeatures count and the summary published; a
window with fewer than drift.min_records records gives no verdict and publishes no metric."""

from __future__ import annotations

import csv
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from harness import ARTIFACT_BUCKET, BASE_SCENARIO, DATA_BUCKET, PROJECT, deploy, new_model, run_dag, train
from test_lineage import _push_image

from mlops_core import names

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "model_template" / "data"
RUNNERS = "local_aws.sagemaker.process_runners"
SHIFTED = {"cmdline_length": lambda v: v * 3, "network_connections": lambda v: v + 6}


@pytest.fixture(scope="module")
def real_env(airflow_db, dags_in_db, slack_sink, dagbag, sdk_dag_callbacks):
    """A local AWS of its own whose SageMaker runs the template's entry points, for this module."""
    import boto3

    from local_aws import LocalAws

    scenario = {**BASE_SCENARIO, "data_capture": {"flush_every_records": 1000, "flush_every_seconds": 0.5}}
    with LocalAws(
        scenario=scenario, job_runner=f"{RUNNERS}:ProcessJobRunner", endpoint_runner=f"{RUNNERS}:ProcessEndpointRunner"
    ) as aws:
        # pytest restores the environment afterwards (the module-scoped form of monkeypatch).
        with pytest.MonkeyPatch.context() as patch:
            for key, value in {**aws.env, "MLOPS_DRIFT_CAPTURE_SETTLE_SECONDS": "0"}.items():
                patch.setenv(key, value)
            yield {
                "aws": aws,
                "boto": boto3.session.Session(region_name=aws.region),
                "slack": slack_sink,
                "dags": dagbag.dags,
            }


def _rows(shifted: bool) -> tuple[list[str], list[list[str]]]:
    """The sample test set's events (label removed), with SHIFTED applied when asked."""
    with (SAMPLE / "test" / "test.csv").open() as handle:
        reader = csv.reader(handle)
        header = next(reader)
        features = header[:-1]
        rows = [row[:-1] for row in reader]
    if shifted:
        for row in rows:
            for name, shift in SHIFTED.items():
                index = features.index(name)
                row[index] = repr(shift(float(row[index])))
    return features, rows


def _send(boto, endpoint: str, rows: list[list[str]], per_request: int = 100) -> None:
    runtime = boto.client("sagemaker-runtime")
    for start in range(0, len(rows), per_request):
        body = "\n".join(",".join(row) for row in rows[start : start + per_request]) + "\n"
        answer = runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=body.encode())
        assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200


def _captured_records(s3, prefix: str) -> int:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=ARTIFACT_BUCKET, Prefix=prefix).get("Contents", [])]
    return sum(
        len(json.loads(line)["captureData"]["endpointInput"]["data"].splitlines())
        for key in keys
        for line in s3.get_object(Bucket=ARTIFACT_BUCKET, Key=key)["Body"].read().splitlines()
    )


def _wait_captured(s3, prefix: str, records: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while _captured_records(s3, prefix) < records:
        assert time.monotonic() < deadline, f"fewer than {records} records captured under {prefix}"
        time.sleep(0.3)
    time.sleep(1.1)  # the next check's window ends after the last capture's (whole-second) time


def _metric(cloudwatch, namespace: str, name: str, dimensions: dict) -> tuple[float, float, float]:
    """(count, minimum, maximum) of the values published in the last hour."""
    from datetime import timedelta

    now = datetime.now(UTC)
    points = cloudwatch.get_metric_statistics(
        Namespace=namespace,
        MetricName=name,
        Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
        StartTime=now - timedelta(hours=1),
        EndTime=now + timedelta(hours=1),
        Period=7200,
        Statistics=["SampleCount", "Minimum", "Maximum"],
    )["Datapoints"]
    if not points:
        return (0, 0.0, 0.0)
    (point,) = points
    return (point["SampleCount"], point["Minimum"], point["Maximum"])


def test_the_drift_check_finds_the_shifted_features_of_the_captured_traffic_only(real_env):
    env = real_env
    m = new_model(env, "drifting", data_capture={"sampling_percentage": 100}, drift={"min_records": 300})
    s3, sm, cloudwatch = (env["boto"].client(s) for s in ("s3", "sagemaker", "cloudwatch"))
    prefix = names.training_data_uri(DATA_BUCKET, PROJECT, m.model).removeprefix(f"s3://{DATA_BUCKET}/")
    for channel in ("train", "test"):
        s3.upload_file(str(SAMPLE / channel / f"{channel}.csv"), DATA_BUCKET, f"{prefix}{channel}/{channel}.csv")
    _push_image(env["boto"], m.model, "1.0.0")

    trained = train(env, m, tag="1.0.0")
    assert trained.state == "success", trained.tasks
    (package,) = m.packages()
    baselines = package["DriftCheckBaselines"]["ModelDataQuality"]
    statistics_uri = baselines["Statistics"]["S3Uri"]
    assert statistics_uri == names.baseline_uri(m.config.run_output_uri(trained.returned("train")["run_name"])) + (
        names.BASELINE_STATISTICS_FILE
    )
    assert baselines["Constraints"]["S3Uri"].endswith("/baseline/constraints.json")
    bucket, key = statistics_uri.removeprefix("s3://").split("/", 1)
    assert json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())["dataset"]["item_count"] == 2400

    deployed = deploy(env, m, "1.0.0+r0")
    assert deployed.state == "success", deployed.tasks
    schedule = json.loads(
        s3.get_object(Bucket=ARTIFACT_BUCKET, Key=f"{PROJECT}/{m.model}/monitoring/schedule.json")["Body"].read()
    )
    assert schedule["baseline_statistics_uri"] == statistics_uri and schedule["model_version"] == "1.0.0+r0"

    # Checks count the traffic from the schedule's start on (the next whole second).
    starts = datetime.fromisoformat(schedule["created_at"].replace("Z", "+00:00"))
    time.sleep(max(0.0, (starts - datetime.now(UTC)).total_seconds()))
    capture_prefix = f"{PROJECT}/{m.model}/data-capture/{m.config.endpoint_name}/AllTraffic/"
    features, unshifted = _rows(shifted=False)
    already = _captured_records(s3, capture_prefix)  # the deployment's smoke test
    _send(env["boto"], m.config.endpoint_name, unshifted)
    _wait_captured(s3, capture_prefix, already + len(unshifted))
    dims = {"Endpoint": m.config.endpoint_name, "MonitoringSchedule": schedule["schedule_name"]}
    model_dims = names.model_metric_dimensions("itest", PROJECT, m.model)

    checked = run_dag(env["dags"][names.DAG_DRIFT_CHECK], {"project": PROJECT, "model": m.model})
    assert checked.state == "success", checked.tasks
    first = json.loads(
        s3.get_object(Bucket=ARTIFACT_BUCKET, Key=f"{PROJECT}/{m.model}/monitoring/latest-check.json")["Body"].read()
    )
    assert first["records"] == len(unshifted) and first["conclusive"] is True and first["drifted"] == []
    assert _metric(cloudwatch, names.MODEL_METRICS_NAMESPACE, names.DRIFTED_FEATURES_METRIC, model_dims) == (1, 0, 0)
    distances = {
        f: _metric(cloudwatch, names.DRIFT_METRICS_NAMESPACE, names.feature_drift_metric(f), dims) for f in features
    }
    assert all(count == 1 and high < 0.1 for count, _, high in distances.values()), distances

    _, shifted = _rows(shifted=True)
    _send(env["boto"], m.config.endpoint_name, shifted)
    _wait_captured(s3, capture_prefix, already + len(unshifted) + len(shifted))
    checked = run_dag(env["dags"][names.DAG_DRIFT_CHECK], {"project": PROJECT, "model": m.model})
    assert checked.state == "success", checked.tasks
    second = json.loads(
        s3.get_object(Bucket=ARTIFACT_BUCKET, Key=f"{PROJECT}/{m.model}/monitoring/latest-check.json")["Body"].read()
    )
    # The window starts where the first ended: only the shifted traffic.
    assert second["window_start"] == first["window_end"] and second["records"] == len(shifted)
    assert sorted(f["name"] for f in second["drifted"]) == sorted(SHIFTED)
    length = next(f for f in second["drifted"] if f["name"] == "cmdline_length")
    assert length["distance"] > length["threshold"] == 0.1
    assert length["current"]["mean"] == pytest.approx(3 * length["baseline"]["mean"], rel=0.3)
    folder = names.drift_check_uri(ARTIFACT_BUCKET, PROJECT, m.model, second["check_name"]).removeprefix(
        f"s3://{ARTIFACT_BUCKET}/"
    )
    assert (
        json.loads(s3.get_object(Bucket=ARTIFACT_BUCKET, Key=folder + names.DRIFT_SUMMARY_FILE)["Body"].read())
        == second
    )
    violations = json.loads(s3.get_object(Bucket=ARTIFACT_BUCKET, Key=folder + names.VIOLATIONS_FILE)["Body"].read())
    assert {v["feature_name"] for v in violations["violations"]} == set(SHIFTED)
    assert _metric(cloudwatch, names.MODEL_METRICS_NAMESPACE, names.DRIFTED_FEATURES_METRIC, model_dims) == (2, 0, 2)
    count, _, high = _metric(
        cloudwatch, names.DRIFT_METRICS_NAMESPACE, names.feature_drift_metric("cmdline_length"), dims
    )
    assert count == 2 and high == pytest.approx(length["distance"])
    job = sm.describe_processing_job(ProcessingJobName=second["check_name"])
    assert job["AppSpecification"] == {"ImageUri": schedule["image_uri"], "ContainerEntrypoint": ["monitor"]}
    assert job["ProcessingInputs"][0]["S3Input"]["S3DataType"] == "ManifestFile"

    # Fewer records than drift.min_records: no verdict, no metric (the alarm keeps its last state).
    _send(env["boto"], m.config.endpoint_name, unshifted[:100])
    _wait_captured(s3, capture_prefix, already + len(unshifted) + len(shifted) + 100)
    checked = run_dag(env["dags"][names.DAG_DRIFT_CHECK], {"project": PROJECT, "model": m.model})
    assert checked.state == "success", checked.tasks
    third = json.loads(
        s3.get_object(Bucket=ARTIFACT_BUCKET, Key=f"{PROJECT}/{m.model}/monitoring/latest-check.json")["Body"].read()
    )
    assert (third["records"], third["conclusive"], third["drifted"]) == (100, False, [])
    assert _metric(cloudwatch, names.MODEL_METRICS_NAMESPACE, names.DRIFTED_FEATURES_METRIC, model_dims) == (2, 0, 2)

    # A check whose job fails: its task fails the run with one notice; no summary, so the window is
    # checked again by the next run.
    _send(env["boto"], m.config.endpoint_name, unshifted[:100])
    _wait_captured(s3, capture_prefix, already + len(unshifted) + len(shifted) + 200)
    env["aws"].update_scenario(
        {"processing": {"rules": [{"when": {"name_contains": "-drift-"}, "fail": "AlgorithmError: boom"}]}}
    )
    notices = len(env["slack"].payloads(m.slack_path))
    failed = run_dag(env["dags"][names.DAG_DRIFT_CHECK], {"project": PROJECT, "model": m.model})
    env["aws"].update_scenario({"processing": {"rules": []}})
    assert failed.state == "failed" and failed.tasks == {
        "plan": "success",
        "drift.check[0]": "failed",
        "drift.summarize[0]": "upstream_failed",
    }
    assert len(env["slack"].payloads(m.slack_path)) == notices + 1
    latest = s3.get_object(Bucket=ARTIFACT_BUCKET, Key=f"{PROJECT}/{m.model}/monitoring/latest-check.json")
    assert json.loads(latest["Body"].read()) == third

    # A scheduled run: the model was checked moments ago, nothing is due.
    scheduled = run_dag(env["dags"][names.DAG_DRIFT_CHECK], None)
    assert scheduled.state == "success" and scheduled.returned("plan") == []
