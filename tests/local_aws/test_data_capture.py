"""Data capture of the local endpoints, held to SageMaker's documentation:

- the record format and the S3 layout of "Capture data from real-time endpoint"
  (https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture-endpoint.html):
  captured files are ``s3://{destination-bucket-prefix}/{endpoint-name}/{variant-name}/yyyy/mm/dd/hh/
  filename.jsonl``, one JSON line per invocation with ``captureData.endpointInput/endpointOutput``
  (``observedContentType``, ``mode``, ``data``, ``encoding``), ``eventMetadata`` (``eventId``,
  ``inferenceTime``) and ``eventVersion`` "0";
- the API reference of DataCaptureConfig and CaptureContentTypeHeader
  (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DataCaptureConfig.html):
  sampling 0-100, 1-32 capture options, "If no headers are specified SageMaker will by default base64
  encode when capturing the data".
"""

from __future__ import annotations

import base64
import json
import random
import threading
import time
from datetime import UTC, datetime

import boto3
import pytest
from botocore.exceptions import ClientError
from local_aws_helpers import make_model, wait_for

from local_aws import LocalAws
from local_aws.sagemaker.data_capture import CaptureBuffers, capture_key, capture_record, sampled

CONFIG = {
    "EnableCapture": True,
    "InitialSamplingPercentage": 100,
    "DestinationS3Uri": "s3://artifacts/proj/model/data-capture",
    "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
    "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]},
}
WHEN = datetime(2026, 12, 5, 7, 4, 9, 123000, tzinfo=UTC)


def _record(config=CONFIG, request=(b"1", "text/csv"), response=(b"1", "text/csv")) -> dict:
    return capture_record(
        config,
        request=request[0],
        request_type=request[1],
        response=response[0],
        response_type=response[1],
        when=WHEN,
        event_id="e-1",
    )


# -- format, layout and sampling ------------------------------------------------------------------
def test_a_record_has_sagemakers_fields_with_listed_types_as_text():
    record = _record(request=(b"120,13\n", "text/csv"), response=(b'{"predictions": [1]}', "application/json"))
    assert record == {
        "captureData": {
            "endpointInput": {
                "observedContentType": "text/csv",
                "mode": "INPUT",
                "data": "120,13\n",
                "encoding": "CSV",
            },
            "endpointOutput": {
                "observedContentType": "application/json",
                "mode": "OUTPUT",
                "data": '{"predictions": [1]}',
                "encoding": "JSON",
            },
        },
        "eventMetadata": {"eventId": "e-1", "inferenceTime": "2026-12-05T07:04:09Z"},
        "eventVersion": "0",
    }


def test_unlisted_content_types_and_configs_without_a_header_are_base64():
    unlisted = _record(request=(b"\x00\x01", "application/x-npy"))
    assert unlisted["captureData"]["endpointInput"]["encoding"] == "BASE64"
    assert base64.b64decode(unlisted["captureData"]["endpointInput"]["data"]) == b"\x00\x01"
    no_header = {k: v for k, v in CONFIG.items() if k != "CaptureContentTypeHeader"}
    record = _record(no_header)
    assert {d["encoding"] for d in record["captureData"].values()} == {"BASE64"}


def test_input_only_capture_records_no_output():
    record = _record({**CONFIG, "CaptureOptions": [{"CaptureMode": "Input"}]})
    assert list(record["captureData"]) == ["endpointInput"]


def test_files_go_under_endpoint_variant_and_utc_hour():
    bucket, key = capture_key(CONFIG["DestinationS3Uri"], "proj--model", "AllTraffic", WHEN, "abc")
    assert bucket == "artifacts"
    assert key == "proj/model/data-capture/proj--model/AllTraffic/2026/12/05/07/04-09-123-abc.jsonl"


def test_sampling_captures_the_configured_share_of_the_traffic():
    rng = random.Random(7)  # noqa: S311 - seeded sampling, not a secret
    assert sum(sampled(20, rng) for _ in range(10_000)) in range(1800, 2200)
    assert all(sampled(100, rng) for _ in range(1000))
    assert not any(sampled(0, rng) for _ in range(1000))


def test_batches_flush_when_full_and_everything_is_written_at_close():
    written: list[list[str]] = []
    done = threading.Event()

    def write(batch):
        written.append(list(batch.lines))
        done.set()

    buffers = CaptureBuffers(write, lambda: (3, 3600.0))
    new = lambda: type("B", (), {"lines": [], "opened": time.monotonic(), "endpoint": "e"})()  # noqa: E731
    for line in ("a", "b", "c"):
        buffers.add(("k",), new, line)
    assert done.wait(5) and written == [["a", "b", "c"]]  # full: written without waiting an hour
    buffers.add(("k",), new, "d")
    buffers.add(("other",), new, "e")
    assert buffers.pending() == 2
    buffers.close()  # shutdown: the partial batches too
    assert sorted(written[1:]) == [["d"], ["e"]] and buffers.pending() == 0


# -- through the real runtime ------------------------------------------------------------------------
def _capturing_endpoint(sm, s3, unique, **capture):
    name = unique("ep-capture")
    bucket = unique("captures")
    s3.create_bucket(Bucket=bucket)
    make_model(sm, name)
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.t2.medium"}
        ],
        DataCaptureConfig={**CONFIG, "DestinationS3Uri": f"s3://{bucket}/proj/model/data-capture", **capture},
    )
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    wait_for(lambda: sm.describe_endpoint(EndpointName=name), "EndpointStatus", {"Creating"})
    return name, bucket


def _captured(s3, bucket: str, expected: int, timeout: float = 10) -> list[tuple[str, dict]]:
    deadline = time.monotonic() + timeout
    while True:
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        lines = [
            (key, json.loads(line))
            for key in keys
            for line in s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()
        ]
        if len(lines) >= expected or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


@pytest.mark.integration
def test_invocations_through_boto3_are_captured_in_sagemakers_layout(aws, sm, s3, unique):
    aws.update_scenario({"data_capture": {"flush_every_records": 2}})
    name, bucket = _capturing_endpoint(sm, s3, unique)
    described = sm.describe_endpoint(EndpointName=name)["DataCaptureConfig"]
    assert described["CaptureStatus"] == "Started" and described["CurrentSamplingPercentage"] == 100
    runtime = boto3.client("sagemaker-runtime")
    for row in (b"120,13\n", b"3400,2\n"):
        runtime.invoke_endpoint(EndpointName=name, ContentType="text/csv", Body=row)
    captured = _captured(s3, bucket, 2)
    assert [r["captureData"]["endpointInput"]["data"] for _, r in captured] == ["120,13\n", "3400,2\n"]
    key, record = captured[0]
    hour = datetime.now(UTC).strftime("%Y/%m/%d/%H")
    assert key.startswith(f"proj/model/data-capture/{name}/AllTraffic/{hour[:10]}/") and key.endswith(".jsonl")
    assert record["captureData"]["endpointOutput"] == {
        "observedContentType": "application/json",
        "mode": "OUTPUT",
        "data": json.dumps({"predictions": [0]}),
        "encoding": "JSON",
    }
    assert record["eventVersion"] == "0" and record["eventMetadata"]["eventId"]


@pytest.mark.integration
def test_a_capture_config_sagemaker_refuses_is_refused(aws, sm, s3, unique):
    with pytest.raises(ClientError, match="initialSamplingPercentage"):
        _capturing_endpoint(sm, s3, unique, InitialSamplingPercentage=101)
    with pytest.raises(ClientError, match="captureMode"):
        _capturing_endpoint(sm, s3, lambda prefix: unique(f"{prefix}-2"), CaptureOptions=[{"CaptureMode": "All"}])


@pytest.mark.integration
def test_captures_below_a_full_batch_are_written_when_local_aws_stops(tmp_path, unique):
    scenario = {
        "endpoints": {"create_delay_seconds": 0.1},
        "data_capture": {"flush_every_records": 1000, "flush_every_seconds": 3600},
    }
    with LocalAws(scenario=scenario, state_dir=tmp_path, enforce_iam=False) as aws:
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=aws.region
        )
        sm, s3 = (session.client(s, endpoint_url=aws.url) for s in ("sagemaker", "s3"))
        name, bucket = _capturing_endpoint(sm, s3, unique)
        runtime = session.client("sagemaker-runtime", endpoint_url=aws.url)
        for _ in range(3):
            runtime.invoke_endpoint(EndpointName=name, ContentType="text/csv", Body=b"1,2\n")
        assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0  # still buffered
        log_path = aws.log_path
    assert f"data capture: wrote 3 records to s3://{bucket}/proj/model/data-capture/{name}/AllTraffic/" in (
        log_path.read_text()
    )
