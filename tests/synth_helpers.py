"""Synthesizing the real app (or small test stacks) the way the CDK CLI would."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk.assertions import Template

from stacks.cdk_context import cdk_json_context

TEST_ENV = cdk.Environment(account="111111111111", region="eu-west-1")
_ASSET_HASH = re.compile(r"[0-9a-f]{64}")
# MwaaEnvironment re-reads an environment file's object version when its content digest changes
# (physical id "<key>@<digest[:16]>"): a content hash like the others, tested on its own in
# tests/constructs/test_mwaa_environment.py.
_CONTENT_DIGEST = re.compile(r"(?<=@)[0-9a-f]{16}\b")


def new_app(**context: Any) -> cdk.App:
    return cdk.App(context=cdk_json_context(**context))


def new_stack(app: cdk.App | None = None, id: str = "Test") -> cdk.Stack:
    return cdk.Stack(app or new_app(), id, env=TEST_ENV)


def template_of(stack: cdk.Stack) -> Template:
    return Template.from_stack(stack)


def masked(template: dict[str, Any]) -> dict[str, Any]:
    """A template with asset hashes replaced, so snapshots change only when the infrastructure does."""
    text = _ASSET_HASH.sub("<asset-hash>", json.dumps(template, sort_keys=True))
    return json.loads(_CONTENT_DIGEST.sub("<content-digest>", text))


def write_project_file(directory: Path, name: str, body: str) -> Path:
    path = directory / f"{name}.py"
    path.write_text(body)
    return path
