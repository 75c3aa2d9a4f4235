"""Turns an exception into what SageMaker shows a person: a short reason in a file, a non-zero exit."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

from mlops_runtime.dataset import DatasetError
from mlops_runtime.hyperparameters import HyperparameterError

# Errors whose message is already the whole story (bad input, not a bug): no traceback in the reason.
EXPECTED_ERRORS = (DatasetError, HyperparameterError, FileNotFoundError)
# SageMaker shows the first 1024 characters of the failure file as FailureReason.
REASON_LIMIT = 1024


class DeliberateFailure(RuntimeError):
    """Raised when ``fail_training`` is set, so demos and tests exercise the real failure path."""


def reason_for(exc: BaseException) -> str:
    if isinstance(exc, (*EXPECTED_ERRORS, DeliberateFailure)):
        return f"{type(exc).__name__}: {exc}"
    return f"unexpected {type(exc).__name__}: {exc} (see the job log for the traceback)"


def report(exc: BaseException, file: Path, stage: str) -> int:
    """Write the reason to ``file`` and the log; return the process exit code."""
    reason = reason_for(exc)
    if not isinstance(exc, (*EXPECTED_ERRORS, DeliberateFailure)):
        traceback.print_exc(file=sys.stderr)
    print(f"{stage} failed: {reason}", file=sys.stderr, flush=True)
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(reason[:REASON_LIMIT] + "\n")
    except OSError as write_error:  # the log line above still carries the reason
        print(f"could not write {file}: {write_error}", file=sys.stderr)
    return 1
