"""Processing inputs of S3DataType ManifestFile in the process runner, as the ProcessingS3Input and
S3DataSource references document them: ``S3Uri`` names a manifest object, a JSON list of one
``{"prefix": "s3://bucket/prefix/"}`` followed by keys relative to that prefix, and only the listed
objects are the input (each at ``LocalPath/<relative key>``)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from local_aws.sagemaker.process_runners import _download_manifest
from local_aws.sagemaker.runners import RunnerContext, RunnerFailure


@pytest.fixture
def ctx(tmp_path):
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="artifacts")
        for key in (
            "cap/e/AllTraffic/2026/12/05/08/a.jsonl",
            "cap/e/AllTraffic/2026/12/05/09/b.jsonl",
            "cap/e/Shadow/x.jsonl",
        ):
            s3.put_object(Bucket="artifacts", Key=key, Body=key.encode())
        yield RunnerContext(
            kind="processing",
            name="job",
            region="us-east-1",
            description={},
            scenario={},
            work_dir=tmp_path,
            client=lambda service: boto3.client(service, region_name="us-east-1"),
            log=lambda line: None,
        )


def _manifest(ctx, document) -> str:
    ctx.client("s3").put_object(Bucket="artifacts", Key="m.json", Body=json.dumps(document).encode())
    return "s3://artifacts/m.json"


def test_only_the_listed_objects_land_at_their_relative_keys(ctx, tmp_path):
    uri = _manifest(ctx, [{"prefix": "s3://artifacts/cap/"}, "e/AllTraffic/2026/12/05/08/a.jsonl"])
    _download_manifest(ctx, uri, tmp_path / "in")
    files = sorted(p.relative_to(tmp_path / "in").as_posix() for p in (tmp_path / "in").rglob("*") if p.is_file())
    assert files == ["e/AllTraffic/2026/12/05/08/a.jsonl"]
    assert (tmp_path / "in" / files[0]).read_text() == "cap/e/AllTraffic/2026/12/05/08/a.jsonl"


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ({"prefix": "s3://artifacts/cap/"}, "is not a JSON list"),
        (["e/AllTraffic/2026/12/05/08/a.jsonl"], "is not a JSON list"),
        ([{"prefix": "s3://artifacts/cap/"}], "lists no objects"),
        ([{"prefix": "s3://artifacts/cap/"}, "../../etc/passwd"], "outside its prefix"),
    ],
)
def test_a_manifest_sagemaker_cannot_use_fails_the_job(ctx, tmp_path, document, reason):
    with pytest.raises(RunnerFailure, match=reason):
        _download_manifest(ctx, _manifest(ctx, document), tmp_path / "in")
    assert not any(Path(tmp_path).rglob("passwd"))
