"""SageMaker's container paths under one configurable root.

SageMaker mounts everything under ``/opt/ml``; setting ``MLOPS_ML_ROOT`` moves the whole tree so the
same entry points run on a laptop, in CI and in tests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT_ENV = "MLOPS_ML_ROOT"
DEFAULT_ROOT = "/opt/ml"


def ml_root() -> Path:
    return Path(os.environ.get(ROOT_ENV) or DEFAULT_ROOT)


@dataclass(frozen=True)
class MLPaths:
    root: Path

    @classmethod
    def from_env(cls) -> MLPaths:
        return cls(ml_root())

    # Training job
    @property
    def hyperparameters(self) -> Path:
        return self.root / "input" / "config" / "hyperparameters.json"

    @property
    def resource_config(self) -> Path:
        # The job's hosts: {"current_host": "algo-1", "hosts": ["algo-1", ...], ...}
        return self.root / "input" / "config" / "resourceconfig.json"

    def channel(self, name: str) -> Path:
        return self.root / "input" / "data" / name

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def failure(self) -> Path:
        return self.root / "output" / "failure"

    # Processing job (evaluation)
    @property
    def processing_model(self) -> Path:
        return self.root / "processing" / "model"

    @property
    def processing_test_candidates(self) -> tuple[Path, Path]:
        return self.root / "processing" / "test", self.root / "processing" / "input"

    @property
    def processing_evaluation(self) -> Path:
        return self.root / "processing" / "evaluation"

    @property
    def processing_train(self) -> Path:
        # The training data, for the baseline; optional (no baseline without it).
        return self.root / "processing" / "train"

    @property
    def processing_baseline(self) -> Path:
        return self.root / "processing" / "baseline"

    # Model Monitor bring-your-own container: where it reads CloudWatch metrics from.
    @property
    def cloudwatch_metrics(self) -> Path:
        return self.root / "output" / "metrics" / "cloudwatch"

    @property
    def processing_message(self) -> Path:
        # A processing job's ExitMessage is read from this file (max 1 KB shown).
        return self.root / "output" / "message"
