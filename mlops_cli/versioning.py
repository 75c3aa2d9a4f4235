"""``mlops version``: the image's next semantic version from the tags already in ECR."""

from __future__ import annotations

from dataclasses import dataclass

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from mlops_cli.errors import CliError
from mlops_core.names import InvalidName, ecr_repository_name
from mlops_core.versions import Bump, bump_for_commit, next_version, released_versions


@dataclass(frozen=True)
class VersionResult:
    repository: str
    repository_uri: str
    version: str
    previous: str
    bump: str

    def dotenv(self) -> dict[str, str]:
        return {
            "MODEL_VERSION": self.version,
            "IMAGE_TAG": self.version,
            "PREVIOUS_VERSION": self.previous,
            "VERSION_BUMP": self.bump,
            "ECR_REPOSITORY": self.repository,
            "IMAGE_URI": f"{self.repository_uri}:{self.version}",
        }


def choose_bump(explicit: str, commit_message: str | None) -> Bump:
    if explicit != "auto":
        return Bump(explicit)
    return bump_for_commit(commit_message or "")


def repository_tags(project: str, model: str) -> tuple[str, str, list[str]]:
    """(repository name, URI, all image tags) of a model's ECR repository."""
    try:
        repository = ecr_repository_name(project, model)
    except InvalidName as exc:
        raise CliError(str(exc), 2) from None
    ecr = boto3.client("ecr")
    try:
        described = ecr.describe_repositories(repositoryNames=[repository])["repositories"][0]
        tags: list[str] = []
        for page in ecr.get_paginator("list_images").paginate(
            repositoryName=repository, filter={"tagStatus": "TAGGED"}
        ):
            tags.extend(image["imageTag"] for image in page["imageIds"] if "imageTag" in image)
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        if code == "RepositoryNotFoundException":
            raise CliError(
                f"ECR repository {repository!r} does not exist: add the model with ModelPipeline and "
                "deploy the platform before its first build"
            ) from None
        raise CliError(
            f"reading tags of {repository!r} failed: {code}: {exc.response['Error'].get('Message', '')}"
        ) from None
    except BotoCoreError as exc:
        raise CliError(f"reading tags of {repository!r} failed: {exc}") from None
    return repository, described["repositoryUri"], tags


def next_image_version(project: str, model: str, bump: Bump) -> VersionResult:
    repository, uri, tags = repository_tags(project, model)
    existing = released_versions(tags)
    version = next_version(tags, bump)
    return VersionResult(repository, uri, str(version), str(existing[-1]) if existing else "", bump.value)


def latest_image_version(project: str, model: str) -> VersionResult:
    """The newest released version (scheduled retraining trains it again)."""
    repository, uri, tags = repository_tags(project, model)
    existing = released_versions(tags)
    if not existing:
        raise CliError(f"{repository!r} has no released version yet: nothing to retrain")
    return VersionResult(repository, uri, str(existing[-1]), str(existing[-1]), "none")
