"""Turns an exception into what SageMaker shows a person: a short reason in a file, a non-zero exit."""

from __future__ import annotations

import signal
import sys
import traceback
from pathlib import Path

from mlops_runtime.dataset import DatasetError
from mlops_runtime.hyperparameters import HyperparameterError


class ResourceConfigError(ValueError):
    """The job's resources do not fit this image (several training instances)."""


# Errors whose message is already the whole story (bad input, not a bug): no traceback in the reason.
EXPECTED_ERRORS = (DatasetError, HyperparameterError, FileNotFoundError, ResourceConfigError)
# SageMaker shows the first 1024 characters of the failure file as FailureReason.
REASON_LIMIT = 1024


# Exit code of a job stopped by SIGTERM, as a shell reports it (128 + 15).
STOPPED_EXIT_CODE = 143


class DeliberateFailure(RuntimeError):
    """Raised when ``fail_training`` is set, so demos and tests exercise the real failure path."""


class Stopped(BaseException):
    """SIGTERM arrived: SageMaker is stopping the job (StopTrainingJob, StopProcessingJob, the
    maximum runtime, a managed spot interruption). A BaseException, like KeyboardInterrupt, so that a
    model's ``except Exception`` cannot swallow it."""


def stop_on_sigterm() -> None:
    """Turn SIGTERM into ``Stopped``. The image has no init process, so ``train`` and ``evaluate`` run
    as PID 1, and the kernel drops every signal PID 1 has no handler for: without this handler the
    job ignores the stop, SageMaker kills it after the grace period and no reason is written."""

    def stop(signum: int, _frame) -> None:
        signal.signal(signum, signal.SIG_IGN)  # a second SIGTERM must not interrupt the report
        raise Stopped(
            f"received {signal.Signals(signum).name}: the job was stopped (StopTrainingJob or "
            "StopProcessingJob, its maximum runtime, or a spot interruption) before it finished"
        )

    signal.signal(signal.SIGTERM, stop)


def reason_for(exc: BaseException) -> str:
    if isinstance(exc, (*EXPECTED_ERRORS, DeliberateFailure, Stopped)):
        return f"{type(exc).__name__}: {exc}"
    return f"unexpected {type(exc).__name__}: {exc} (see the job log for the traceback)"


def report(exc: BaseException, file: Path, stage: str) -> int:
    """Write the reason to ``file`` and the log; return the process exit code."""
    reason = reason_for(exc)
    if not isinstance(exc, (*EXPECTED_ERRORS, DeliberateFailure, Stopped)):
        traceback.print_exc(file=sys.stderr)
    print(f"{stage} failed: {reason}", file=sys.stderr, flush=True)
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(reason[:REASON_LIMIT] + "\n")
    except OSError as write_error:  # the log line above still carries the reason
        print(f"could not write {file}: {write_error}", file=sys.stderr)
    return STOPPED_EXIT_CODE if isinstance(exc, Stopped) else 1
