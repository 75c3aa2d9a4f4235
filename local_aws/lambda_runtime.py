"""One Lambda execution environment of local Lambda: imports a handler once (a warm container) and
answers invocations, one JSON line in, one JSON line out on its own pipe.

``python -m local_aws.lambda_runtime module.function`` with the function's environment (its
variables and its role's credentials, as the Lambda runtime provides them). What the handler
prints and logs goes to stderr (the function's log), never into the answers.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from typing import Any


class Context:
    """The attributes the Lambda runtime gives a handler."""

    def __init__(self, details: dict[str, Any]) -> None:
        self.function_name = details["function_name"]
        self.function_version = details.get("function_version", "$LATEST")
        self.invoked_function_arn = details["invoked_function_arn"]
        self.memory_limit_in_mb = details.get("memory_limit_in_mb", 128)
        self.aws_request_id = details["aws_request_id"]
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + float(details.get("timeout_seconds", 60))

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main() -> None:
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr  # the handler's prints and logs are its log, not answers
    module_name, _, function_name = sys.argv[1].rpartition(".")
    handler = getattr(importlib.import_module(module_name), function_name)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            result = {"ok": True, "payload": handler(request["event"], Context(request["context"]))}
        except Exception as exc:  # noqa: BLE001 - Lambda reports an unhandled error as FunctionError
            result = {"ok": False, "errorType": type(exc).__name__, "errorMessage": str(exc)}
        answers.write(json.dumps(result, default=str) + "\n")


if __name__ == "__main__":
    main()
