"""Semantic versions of model images: the released tags and the next one.

The next version is computed from the tags already in the model's ECR repository, so CI needs no
state of its own. Which bump a change asks for is decided by the ``mlops`` CLI from the merged
commits (``mlops_cli.versioning``, with commitizen's conventional-commit rules).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

import semver

from mlops_core.names import InvalidName, parse_version

INITIAL_VERSION = semver.Version(0, 1, 0)


class Bump(enum.StrEnum):
    MAJOR = "major"
    MINOR = "minor"
    PATCH = "patch"


def released_versions(tags: Iterable[str]) -> list[semver.Version]:
    """Release versions among image tags, ignoring non-semver tags (``latest``, sha tags) and
    pre-releases."""
    versions = []
    for tag in tags:
        try:
            version = parse_version(tag)
        except InvalidName:
            continue
        if not version.prerelease and not version.build:
            versions.append(version)
    return sorted(versions)


def next_version(tags: Iterable[str], bump: Bump | str) -> semver.Version:
    """The version after the highest released tag; ``0.1.0`` when there is none."""
    existing = released_versions(tags)
    if not existing:
        return INITIAL_VERSION
    return existing[-1].next_version(part=Bump(bump).value)
