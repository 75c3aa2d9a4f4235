"""``POST /endpoints/<name>/invocations`` over plain HTTP, as curl sends it: SageMaker's runtime
authenticates InvokeEndpoint with SigV4 only ("Calls to InvokeEndpoint are authenticated by using
AWS Signature Version 4", InvokeEndpoint API reference), signed for the service ``sagemaker``.

A signed curl call gets the endpoint's answer; an unsigned one gets AWS's common error
MissingAuthenticationToken (403), and one signed for another service the signature error. Before,
both fell through to moto, which answered 500 (an S3 ``KeyError: 'DEFAULT'`` in its log).
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from local_aws_helpers import make_config, make_model, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl"),
]
PENDING = {"Creating", "Updating"}


@pytest.fixture
def endpoint(sm, unique):
    name = unique("ep-http")
    make_model(sm, name)
    make_config(sm, name, name)
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    wait_for(lambda: sm.describe_endpoint(EndpointName=name), "EndpointStatus", PENDING)
    return name


def _curl(url: str, *signing: str) -> tuple[int, dict]:
    done = subprocess.run(
        [
            "curl",
            "-s",
            "-w",
            "\n%{http_code}",
            "-H",
            "Content-Type: application/json",
            "--data",
            '{"instances": [[1]]}',
            *signing,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    body, _, status = done.stdout.rpartition("\n")
    return int(status), json.loads(body)


def test_a_sigv4_signed_curl_call_reaches_the_endpoint(aws, endpoint):
    status, body = _curl(
        f"{aws.url}/endpoints/{endpoint}/invocations",
        "--aws-sigv4",
        "aws:amz:us-east-1:sagemaker",
        "--user",
        "testing:testing",
    )
    assert (status, body) == (200, {"predictions": [0]})


def test_an_unsigned_call_is_refused_as_aws_refuses_it_not_with_a_500(aws, endpoint):
    status, body = _curl(f"{aws.url}/endpoints/{endpoint}/invocations")
    assert status == 403
    assert body["__type"] == "MissingAuthenticationToken"


def test_a_call_signed_for_another_service_names_the_right_one(aws, endpoint):
    status, body = _curl(
        f"{aws.url}/endpoints/{endpoint}/invocations",
        "--aws-sigv4",
        "aws:amz:us-east-1:sagemaker-runtime",
        "--user",
        "testing:testing",
    )
    assert status == 403
    assert "scoped to correct service: 'sagemaker'" in body["message"]
