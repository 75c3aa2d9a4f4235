"""``mlops version``: which release a change asks for, from what was merged.

GitLab's default merge commit reads ``Merge branch 'x' into 'main'`` on its first line, with the
merge request's title (and, with the ``%{all_commits}`` template, every merged commit) in its
body. The bump is the highest one any line of the message asks for, as commitizen decides it for
conventional commits (``feat`` minor, ``fix``/``perf``/``refactor`` patch, ``!`` or ``BREAKING
CHANGE`` major); a release is at least a patch. commitizen is the parser: no hand-written grammar.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from mlops_cli.errors import CliError
from mlops_core.names import InvalidName, ecr_repository_name
from mlops_core.versions import Bump, next_version, released_versions


def _import_commitizen():
    """commitizen's package import runs logging.config.dictConfig(disable_existing_loggers=True),
    which would silence every logger created before it (boto3's, a Lambda handler's in tests):
    give them back their state."""
    loggers = [logger for logger in logging.Logger.manager.loggerDict.values() if isinstance(logger, logging.Logger)]
    disabled = [logger.disabled for logger in loggers]
    from commitizen.cz.conventional_commits import ConventionalCommitsCz
    from commitizen.version_increment import VersionIncrement

    for logger, was in zip(loggers, disabled, strict=True):
        logger.disabled = was
    return ConventionalCommitsCz, VersionIncrement


ConventionalCommitsCz, VersionIncrement = _import_commitizen()
_BUMPS = {VersionIncrement.MAJOR: Bump.MAJOR, VersionIncrement.MINOR: Bump.MINOR}


def bump_for_messages(messages: Iterable[str]) -> Bump:
    """The bump the merged change asks for; anything without a conventional type is a patch."""
    # GitLab's %{all_commits} lists each merged commit as "* <message>": the message is the commit.
    lines = ["\n".join(line.removeprefix("* ") for line in message.splitlines()) for message in messages]
    increment = VersionIncrement.get_highest_by_messages(
        lines, ConventionalCommitsCz.bump_pattern, ConventionalCommitsCz.bump_map
    )
    return _BUMPS.get(increment, Bump.PATCH)


def choose_bump(explicit: str, commit_message: str | None) -> Bump:
    if explicit != "auto":
        return Bump(explicit)
    return bump_for_messages([commit_message or ""])


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


def next_image_version(project: str, model: str, bump: Bump) -> VersionResult:
    """The version a release would get now (a preview: ``mlops image release`` decides for real)."""
    try:
        repository = ecr_repository_name(project, model)
    except InvalidName as exc:
        raise CliError(str(exc), 2) from None
    ecr = boto3.client("ecr")
    try:
        uri = ecr.describe_repositories(repositoryNames=[repository])["repositories"][0]["repositoryUri"]
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
    existing = released_versions(tags)
    version = next_version(tags, bump)
    return VersionResult(repository, uri, str(version), str(existing[-1]) if existing else "", bump.value)
