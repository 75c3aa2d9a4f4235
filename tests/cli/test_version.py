"""`mlops version` / `mlops image release`: the bump from what was merged, and the release
against real ECR (moto server): next free version, a re-run, two pipelines racing."""

from __future__ import annotations

import json
from pathlib import Path
from unittest.mock import patch

import boto3
import pytest

from local_mode.image_archive import write_archive
from mlops_cli import images as images_module
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


MERGE = "Merge branch 'feature/{slug}' into 'main'\n\n{title}\n\nCloses #12\n\nSee merge request detection/model!34"


@pytest.mark.parametrize(
    ("message", "bump"),
    [
        ("feat: add feature", "minor"),
        ("feat(model): add feature", "minor"),
        ("fix: bug", "patch"),
        ("chore: deps", "patch"),  # a release is at least a patch
        ("feat!: drop input column", "major"),
        ("refactor(api)!: rename", "major"),
        ("fix: thing\n\nBREAKING CHANGE: output format changed", "major"),
        ("", "patch"),
        # GitLab's default merge commit: the first line says nothing, the merge request's title does.
        (MERGE.format(slug="x", title="feat: score process trees"), "minor"),
        (MERGE.format(slug="x", title="feat!: new input schema"), "major"),
        (MERGE.format(slug="x", title="fix: threshold"), "patch"),
        # The %{all_commits} template lists every merged commit: the highest bump wins.
        (MERGE.format(slug="x", title="Model update") + "\n\n* fix: a\n\n* feat: b", "minor"),
    ],
)
def test_the_bump_comes_from_what_was_merged(tmp_path, message, bump, capsys):
    out = tmp_path / "bump.env"
    assert main(["version", "bump", "--commit-message", message, "--output", str(out)]) == 0
    assert read_dotenv(out) == {"VERSION_BUMP": bump}


def test_the_bump_defaults_to_the_upstream_commit_message(tmp_path, monkeypatch):
    monkeypatch.setenv("UPSTREAM_COMMIT_MESSAGE", MERGE.format(slug="y", title="feat: more features"))
    monkeypatch.chdir(tmp_path)
    assert main(["version", "bump"]) == 0
    assert read_dotenv(tmp_path / "bump.env") == {"VERSION_BUMP": "minor"}


def archive(tmp_path, name: str, text: str = "print(1)\n") -> Path:
    source = tmp_path / f"src-{name}"
    source.mkdir()
    (source / "model.py").write_text(text)
    path = tmp_path / f"{name}.tar"
    write_archive(source, path)
    return path


def release(image: Path, bump: str, out: Path) -> int:
    return main(
        [
            "image",
            "release",
            "--project",
            "fraud",
            "--model",
            "scorer",
            "--image",
            str(image),
            "--bump",
            bump,
            "--output",
            str(out),
        ]
    )


def test_release_pushes_the_image_under_the_next_version_and_only_that_tag(aws, tmp_path):
    uri = make_repository(["0.1.0", "0.2.0", "latest"])
    out = tmp_path / "release.env"
    assert release(archive(tmp_path, "a"), "minor", out) == 0
    values = read_dotenv(out)
    assert values["MODEL_VERSION"] == "0.3.0" and values["PREVIOUS_VERSION"] == "0.2.0"
    assert values["IMAGE_URI"] == f"{uri}:0.3.0"
    ecr = boto3.client("ecr")
    (detail,) = ecr.describe_images(repositoryName="fraud/scorer", imageIds=[{"imageTag": "0.3.0"}])["imageDetails"]
    assert detail["imageTags"] == ["0.3.0"] and detail["imageDigest"] == values["IMAGE_DIGEST"]


def test_a_rerun_of_a_finished_release_is_a_no_op(aws, tmp_path, capsys):
    make_repository(["0.1.0"])
    image = archive(tmp_path, "a")
    assert release(image, "patch", tmp_path / "first.env") == 0
    assert release(image, "patch", tmp_path / "again.env") == 0
    assert read_dotenv(tmp_path / "again.env")["MODEL_VERSION"] == "0.1.1"
    assert "is this image already" in capsys.readouterr().out
    tags = [i.get("imageTag") for i in boto3.client("ecr").list_images(repositoryName="fraud/scorer")["imageIds"]]
    assert sorted(t for t in tags if t) == ["0.1.0", "0.1.1"]


def test_concurrent_releases_of_one_model_get_distinct_versions(aws, tmp_path):
    """Both pipelines read the same tags and want the same version: ECR's immutable tags let one
    win; the other reads the tags again and takes the next version."""
    make_repository(["1.0.0"])
    ecr = boto3.client("ecr")
    ecr.put_image_tag_mutability(repositoryName="fraud/scorer", imageTagMutability="IMMUTABLE")
    first, second = archive(tmp_path, "a", "a = 1\n"), archive(tmp_path, "b", "b = 2\n")
    real_put = images_module.boto3.client

    def racing_client(*args, **kwargs):
        client = real_put(*args, **kwargs)
        original = client.put_image

        def put_image(**params):
            if not racing_client.raced:  # the other pipeline puts the same version just before us
                racing_client.raced = True
                assert release(first, "minor", tmp_path / "a.env") == 0
            return original(**params)

        client.put_image = put_image
        return client

    racing_client.raced = False
    with patch.object(images_module.boto3, "client", racing_client):
        assert release(second, "minor", tmp_path / "b.env") == 0
    assert read_dotenv(tmp_path / "a.env")["MODEL_VERSION"] == "1.1.0"
    assert read_dotenv(tmp_path / "b.env")["MODEL_VERSION"] == "1.2.0"


def test_a_missing_archive_is_a_clear_error(aws, tmp_path, capsys):
    make_repository([])
    assert release(tmp_path / "nothing.tar", "patch", tmp_path / "r.env") == 1
    assert "did the package job build it?" in capsys.readouterr().err


def test_version_next_previews_the_release(aws, tmp_path):
    make_repository(["0.4.0"])
    out = tmp_path / "v.env"
    assert (
        main(
            [
                "version",
                "next",
                "--project",
                "fraud",
                "--model",
                "scorer",
                "--commit-message",
                "feat: x",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    assert read_dotenv(out)["MODEL_VERSION"] == "0.5.0"


def test_many_tags_are_paged(aws, tmp_path):
    make_repository([f"0.{i}.0" for i in range(1, 130)])
    out = tmp_path / "v.env"
    assert (
        main(["version", "next", "--project", "fraud", "--model", "scorer", "--bump", "patch", "--output", str(out)])
        == 0
    )
    assert read_dotenv(out)["MODEL_VERSION"] == "0.129.1"


def test_missing_repository_is_a_clear_error(aws, tmp_path, capsys):
    code = main(["version", "next", "--project", "fraud", "--model", "scorer", "--output", str(tmp_path / "v")])
    assert code == 1
    assert "ECR repository 'fraud/scorer' does not exist" in capsys.readouterr().err
    assert not (tmp_path / "v").exists()


def test_invalid_model_name_is_usage_error(aws, capsys):
    assert main(["version", "next", "--project", "Fraud", "--model", "scorer"]) == 2
    assert "project='Fraud' is invalid" in capsys.readouterr().err


def test_missing_project_names_the_variable(aws, monkeypatch, capsys):
    monkeypatch.delenv("MODEL_PROJECT", raising=False)
    assert main(["version", "next", "--model", "scorer"]) == 2
    assert "--project is required (or set MODEL_PROJECT)" in capsys.readouterr().err
