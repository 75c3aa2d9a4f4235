"""Shared by the trigger tests (a uniquely named module: several conftest.py share one session).
Puts lambda_src/dag_trigger on sys.path the way the Lambda runtime sees the package."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

HANDLER_ROOT = str(Path(__file__).resolve().parents[2] / "lambda_src" / "dag_trigger")
if HANDLER_ROOT not in sys.path:
    sys.path.insert(0, HANDLER_ROOT)

ENVIRONMENT = "mlops-dev"


@dataclass
class FakeContext:
    """The attributes Powertools and the handler read from a Lambda context."""

    function_name: str = "mlops-dev-dag-trigger"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:111111111111:function:mlops-dev-dag-trigger:fraud"
    aws_request_id: str = "req-1"
    remaining_ms: int = 30_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms
