"""The Deployment DAG gives the endpoint the model's data capture, and the endpoint captures: a
real deployment (dag.test()) against local AWS, whose runtime writes what its smoke test sent in
SageMaker's capture format under the model's prefix of the artifacts bucket."""

from __future__ import annotations

import json
import time

import pytest
from harness import ARTIFACT_BUCKET, deploy, new_model, train

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _captured_lines(s3, prefix: str, timeout: float = 15) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=ARTIFACT_BUCKET, Prefix=prefix).get("Contents", [])]
        if keys or time.monotonic() > deadline:
            return [
                json.loads(line)
                for key in keys
                for line in s3.get_object(Bucket=ARTIFACT_BUCKET, Key=key)["Body"].read().decode().splitlines()
            ]
        time.sleep(0.2)


def test_the_deployed_endpoint_captures_its_traffic_as_configured(env):
    key_arn = env["boto"].client("kms").create_key(Description="capture test")["KeyMetadata"]["Arn"]
    m = new_model(env, "captured", kms_key_arn=key_arn, data_capture={"sampling_percentage": 100})
    env["aws"].update_scenario({"data_capture": {"flush_every_records": 1}})
    assert train(env, m, tag="1.0.0").state == "success"
    run = deploy(env, m, "1.0.0+r0")
    assert run.state == "success", run.tasks

    sm = env["boto"].client("sagemaker")
    config_name = sm.describe_endpoint(EndpointName=m.config.endpoint_name)["EndpointConfigName"]
    capture = sm.describe_endpoint_config(EndpointConfigName=config_name)["DataCaptureConfig"]
    assert capture["DestinationS3Uri"] == f"s3://{ARTIFACT_BUCKET}/itest/captured/data-capture"
    assert capture["InitialSamplingPercentage"] == 100 and capture["KmsKeyId"] == key_arn
    assert {o["CaptureMode"] for o in capture["CaptureOptions"]} == {"Input", "Output"}
    assert "text/csv" in capture["CaptureContentTypeHeader"]["CsvContentTypes"]

    # The smoke test's request (a row of the model's test data, label removed) was captured.
    lines = _captured_lines(
        env["boto"].client("s3"), f"itest/captured/data-capture/{m.config.endpoint_name}/AllTraffic/"
    )
    assert [line["captureData"]["endpointInput"]["data"] for line in lines] == ["120,13\n"]
    assert lines[0]["captureData"]["endpointInput"]["encoding"] == "CSV"


def test_a_model_that_turns_capture_off_gets_an_endpoint_without_it(env):
    m = new_model(env, "uncaptured", data_capture={"enabled": False}, drift={"enabled": False})
    assert train(env, m, tag="1.0.0").state == "success"
    assert deploy(env, m, "1.0.0+r0").state == "success"
    sm = env["boto"].client("sagemaker")
    config_name = sm.describe_endpoint(EndpointName=m.config.endpoint_name)["EndpointConfigName"]
    assert "DataCaptureConfig" not in sm.describe_endpoint_config(EndpointConfigName=config_name)
