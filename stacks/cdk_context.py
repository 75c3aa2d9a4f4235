"""The feature flags and context of cdk.json, for apps built outside the CDK CLI (tests,
benchmarks): the CLI passes them itself, a plain ``cdk.App()`` would fall back to legacy defaults."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"


def cdk_json_context(**overrides: Any) -> dict[str, Any]:
    context = json.loads(CDK_JSON.read_text())["context"]
    return {**context, **overrides}
