"""Semantic versions of model images: which bump a commit asks for and what the next tag is.

Conventional commits decide the bump (``feat`` -> minor, ``fix``/others -> patch, ``!`` or a
``BREAKING CHANGE`` footer -> major); an explicit bump overrides it. The next version is computed
from the tags already in the model's ECR repository, so CI needs no state of its own.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable

import semver

from mlops_core.names import InvalidName, parse_version

INITIAL_VERSION = semver.Version(0, 1, 0)


class Bump(enum.StrEnum):
    MAJOR = "major"
    MINOR = "minor"
    PATCH = "patch"


_HEADER_RE = re.compile(r"^(?P<type>[a-zA-Z]+)(?:\([^)]*\))?(?P<breaking>!)?:\s")


def bump_for_commit(message: str) -> Bump:
    """The bump a (conventional) commit message asks for; anything unrecognised is a patch."""
    lines = message.strip().splitlines() or [""]
    header = _HEADER_RE.match(lines[0])
    if (header and header["breaking"]) or any(
        line.startswith(("BREAKING CHANGE:", "BREAKING-CHANGE:")) for line in lines[1:]
    ):
        return Bump.MAJOR
    if header and header["type"].lower() == "feat":
        return Bump.MINOR
    return Bump.PATCH


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
