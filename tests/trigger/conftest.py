"""The handler is deployed from lambda_src/dag_trigger; import it the way the Lambda runtime does."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "lambda_src" / "dag_trigger"))

from dag_trigger_fn.airflow import AirflowApi  # noqa: E402
from dag_trigger_fn.handler import DagTriggerService  # noqa: E402

ENVIRONMENT = "mlops-dev"


@dataclass
class FakeContext:
    """The attributes Powertools and the handler read from a Lambda context."""

    function_name: str = "mlops-dev-dag-trigger"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:111111111111:function:mlops-dev-dag-trigger"
    aws_request_id: str = "req-1"
    remaining_ms: int = 30_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def mwaa():
    client = boto3.client(
        "mwaa",
        region_name="eu-west-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",  # noqa: S106 - Stubber, no AWS
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def service(mwaa, sleeps):
    client, _ = mwaa
    api = AirflowApi(client, ENVIRONMENT, sleep=sleeps.append, remaining_seconds=lambda: 30.0)
    return DagTriggerService(api, client, ENVIRONMENT)
