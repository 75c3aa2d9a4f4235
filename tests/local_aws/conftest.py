"""One local AWS server per test session (start-up is ~3 s, mostly importing moto); every test
resets the scenario to fast delays and uses its own resource names."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from local_aws_helpers import ROLE

from local_aws import LocalAws
from local_aws.roles import ensure_service_role

FAST = {
    "training": {"delay_seconds": 0.2},
    "processing": {"delay_seconds": 0.2},
    "endpoints": {"create_delay_seconds": 0.2, "update_delay_seconds": 0.2},
}


@pytest.fixture(scope="session")
def server() -> Iterator[LocalAws]:
    with LocalAws(scenario=FAST) as aws:
        yield aws


@pytest.fixture
def aws(server: LocalAws, monkeypatch: pytest.MonkeyPatch) -> LocalAws:
    server.set_scenario(FAST)
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    for key, value in server.env.items():
        monkeypatch.setenv(key, value)
    # Local AWS refuses what AWS refuses: SageMaker must be able to assume the jobs' role.
    ensure_service_role(boto3.client("iam"), ROLE.rsplit("/", 1)[-1])
    return server


@pytest.fixture
def sm(aws: LocalAws) -> Any:
    return boto3.client("sagemaker")


@pytest.fixture
def s3(aws: LocalAws) -> Any:
    return boto3.client("s3")


@pytest.fixture
def unique() -> Callable[[str], str]:
    token = uuid.uuid4().hex[:8]
    return lambda prefix: f"{prefix}-{token}"


@pytest.fixture
def buckets(s3: Any, unique: Callable[[str], str]) -> dict[str, str]:
    """A data bucket with training data and an empty artifact bucket."""
    data, artifacts = unique("data"), unique("artifacts")
    s3.create_bucket(Bucket=data)
    s3.create_bucket(Bucket=artifacts)
    s3.put_object(Bucket=data, Key="proj/model/training/train.csv", Body=b"x,y\n1,0\n")
    return {"data": data, "artifacts": artifacts}
