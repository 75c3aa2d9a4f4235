"""Exit codes of ``mlops`` (documented in ``mlops --help``)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # the operation or the DAG run failed, or AWS/GitLab refused it
EXIT_USAGE = 2  # bad arguments or a request the platform rejects as invalid (argparse uses 2 too)
EXIT_TIMEOUT = 3  # --wait gave up before the DAG run finished


class CliError(Exception):
    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
