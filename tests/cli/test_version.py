"""`mlops version`: next version from real ECR tags (moto server) and the dotenv CI reads."""

from __future__ import annotations

import json

import boto3
import pytest

from mlops_cli.dotenv import read_dotenv
from mlops_cli.main import main

pytestmark = pytest.mark.integration


def make_repository(tags: list[str], name: str = "fraud/scorer") -> str:
    ecr = boto3.client("ecr")
    uri = ecr.create_repository(repositoryName=name)["repository"]["repositoryUri"]
    for tag in tags:
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"digest": f"sha256:{tag.encode().hex():0<64}"[:71], "size": 1},
                "layers": [],
            }
        )
        ecr.put_image(repositoryName=name, imageManifest=manifest, imageTag=tag)
    return uri


@pytest.mark.parametrize(
    ("tags", "message", "bump", "expected", "previous", "chosen"),
    [
        ([], "feat: first", "auto", "0.1.0", "", "minor"),
        (["0.1.0", "0.2.0", "latest", "0.3.0-rc.1", "abc1234"], "fix: typo", "auto", "0.2.1", "0.2.0", "patch"),
        (["1.2.3", "1.10.0"], "feat(api): new input", "auto", "1.11.0", "1.10.0", "minor"),
        (["1.2.3"], "refactor!: drop v1 input", "auto", "2.0.0", "1.2.3", "major"),
        (["1.2.3"], "chore: x\n\nBREAKING CHANGE: new schema", "auto", "2.0.0", "1.2.3", "major"),
        (["1.2.3"], "feat: ignored", "patch", "1.2.4", "1.2.3", "patch"),
    ],
)
def test_next_version_from_ecr_tags_written_as_dotenv(aws, tmp_path, tags, message, bump, expected, previous, chosen):
    uri = make_repository(tags)
    out = tmp_path / "version.env"
    code = main(
        [
            "version",
            "next",
            "--project",
            "fraud",
            "--model",
            "scorer",
            "--bump",
            bump,
            "--commit-message",
            message,
            "--output",
            str(out),
        ]
    )
    assert code == 0
    assert read_dotenv(out) == {
        "MODEL_VERSION": expected,
        "IMAGE_TAG": expected,
        "PREVIOUS_VERSION": previous,
        "VERSION_BUMP": chosen,
        "ECR_REPOSITORY": "fraud/scorer",
        "IMAGE_URI": f"{uri}:{expected}",
    }


def test_defaults_come_from_gitlab_variables(aws, tmp_path, monkeypatch):
    make_repository(["0.4.0"])
    monkeypatch.setenv("MODEL_PROJECT", "fraud")
    monkeypatch.setenv("MODEL_NAME", "scorer")
    monkeypatch.setenv("CI_COMMIT_MESSAGE", "feat: more features")
    monkeypatch.chdir(tmp_path)
    assert main(["version", "next"]) == 0
    values = read_dotenv(tmp_path / "version.env")
    assert values["MODEL_VERSION"] == "0.5.0" and values["VERSION_BUMP"] == "minor"


def test_many_tags_are_paged(aws, tmp_path):
    make_repository([f"0.{i}.0" for i in range(1, 130)])
    out = tmp_path / "v.env"
    assert (
        main(["version", "next", "--project", "fraud", "--model", "scorer", "--bump", "patch", "--output", str(out)])
        == 0
    )
    assert read_dotenv(out)["MODEL_VERSION"] == "0.129.1"


def test_latest_version_for_retraining(aws, tmp_path):
    make_repository(["0.1.0", "0.3.0", "0.2.0"])
    out = tmp_path / "v.env"
    assert main(["version", "latest", "--project", "fraud", "--model", "scorer", "--output", str(out)]) == 0
    assert read_dotenv(out)["MODEL_VERSION"] == "0.3.0"


def test_missing_repository_is_a_clear_error(aws, tmp_path, capsys):
    code = main(["version", "next", "--project", "fraud", "--model", "scorer", "--output", str(tmp_path / "v")])
    assert code == 1
    assert "ECR repository 'fraud/scorer' does not exist" in capsys.readouterr().err
    assert not (tmp_path / "v").exists()


def test_no_release_to_retrain_is_an_error(aws, tmp_path, capsys):
    make_repository(["latest"])
    assert main(["version", "latest", "--project", "fraud", "--model", "scorer", "--output", str(tmp_path / "v")]) == 1
    assert "no released version" in capsys.readouterr().err


def test_invalid_model_name_is_usage_error(aws, capsys):
    assert main(["version", "next", "--project", "Fraud", "--model", "scorer"]) == 2
    assert "project='Fraud' is invalid" in capsys.readouterr().err


def test_missing_project_names_the_variable(aws, monkeypatch, capsys):
    monkeypatch.delenv("MODEL_PROJECT", raising=False)
    assert main(["version", "next", "--model", "scorer"]) == 2
    assert "--project is required (or set MODEL_PROJECT)" in capsys.readouterr().err


def test_promote_tags_the_ci_image_with_the_release_version(aws, capsys):
    make_repository(["ci-123"])
    ecr = boto3.client("ecr")
    ci_digest = ecr.describe_images(repositoryName="fraud/scorer")["imageDetails"][0]["imageDigest"]
    assert (
        main(
            ["image", "promote", "--project", "fraud", "--model", "scorer", "--from-tag", "ci-123", "--to-tag", "1.0.0"]
        )
        == 0
    )
    tags = {
        tag
        for d in ecr.describe_images(repositoryName="fraud/scorer")["imageDetails"]
        if d["imageDigest"] == ci_digest
        for tag in d.get("imageTags", [])
    }
    assert tags == {"ci-123", "1.0.0"}
    assert ci_digest in capsys.readouterr().out


def test_promote_of_a_missing_ci_image_fails(aws, capsys):
    make_repository([])
    assert (
        main(["image", "promote", "--project", "fraud", "--model", "scorer", "--from-tag", "ci-9", "--to-tag", "1.0.0"])
        == 1
    )
    assert "fraud/scorer:ci-9 does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("tag", ["1.0", "1.0.0-rc.1", "v1.0.0", "latest"])
def test_promote_accepts_only_release_versions(aws, capsys, tag):
    assert (
        main(["image", "promote", "--project", "fraud", "--model", "scorer", "--from-tag", "ci-1", "--to-tag", tag])
        == 2
    )
