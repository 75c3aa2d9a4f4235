"""The handler is deployed from lambda_src/dag_trigger; import it the way the Lambda runtime does."""

from __future__ import annotations

import boto3
import pytest
import trigger_test_support  # puts the handler package on sys.path (before dag_trigger_fn)
from botocore.stub import Stubber
from dag_trigger_fn.airflow import AirflowApi
from dag_trigger_fn.handler import DagTriggerService


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
    api = AirflowApi(client, trigger_test_support.ENVIRONMENT, sleep=sleeps.append, remaining_seconds=lambda: 30.0)
    return DagTriggerService(api, client, trigger_test_support.ENVIRONMENT)
