"""The model manifest returned with every prediction, read once from the environment that the
platform's Deployment DAG sets on the SageMaker model (names in ``contract.MANIFEST_ENV``)."""

from __future__ import annotations

import os
import re

from mlops_runtime.contract import MANIFEST_ENV

_UNSAFE = re.compile(r"[^\x21-\x7e]")  # visible ASCII only, as SageMaker custom attributes require
CUSTOM_ATTRIBUTES_LIMIT = 1024


def from_env(environ: os._Environ | dict | None = None) -> dict[str, str | None]:
    env = os.environ if environ is None else environ
    return {key: env.get(variable) or None for key, variable in MANIFEST_ENV.items()}


def custom_attributes(manifest: dict[str, str | None]) -> str:
    """The manifest as ``X-Amzn-SageMaker-Custom-Attributes`` (the one response header SageMaker passes
    back to the caller, as ``CustomAttributes``), e.g. ``model_name=fraud,model_version=1.2.0+r0``.
    This is how a CSV response carries the manifest."""
    parts = [f"{k}={_UNSAFE.sub('_', v).replace(',', '_')}" for k, v in manifest.items() if v]
    return ",".join(parts)[:CUSTOM_ATTRIBUTES_LIMIT]
