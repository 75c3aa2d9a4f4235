"""Typed hyperparameters. SageMaker passes every value as a string in hyperparameters.json."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


class HyperparameterError(ValueError):
    """A hyperparameter is unknown or its value is invalid; the message names it."""


@dataclass(frozen=True)
class Hyperparameter:
    type: type
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    help: str = ""

    def parse(self, name: str, raw: Any) -> Any:
        text = raw if isinstance(raw, str) else json.dumps(raw)
        try:
            if self.type is bool:
                lowered = text.strip().lower()
                if lowered not in _TRUE | _FALSE:
                    raise ValueError
                return lowered in _TRUE
            value = self.type(text.strip())
        except ValueError:
            raise HyperparameterError(
                f"hyperparameter {name}={raw!r} is not a valid {self.type.__name__}"
            ) from None
        if self.minimum is not None and value < self.minimum:
            raise HyperparameterError(f"hyperparameter {name}={value} is below the minimum {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise HyperparameterError(f"hyperparameter {name}={value} is above the maximum {self.maximum}")
        return value


# Handled by the runtime for every model. fail_training exists for demos and tests of the platform's
# failure path: the job fails like a real bug would (failure file, non-zero exit).
RUNTIME_HYPERPARAMETERS = {
    "fail_training": Hyperparameter(bool, False, help="fail on purpose (failure-path demo)"),
    "validation_fraction": Hyperparameter(
        float,
        0.2,
        minimum=0.05,
        maximum=0.5,
        help="held-out share of the train channel when there is no validation channel",
    ),
}


def resolve(raw: dict[str, Any], spec: dict[str, Hyperparameter]) -> dict[str, Any]:
    """Defaults overlaid with ``raw`` values, parsed and checked; unknown names are an error (a typo
    silently ignored would train a different model than the one asked for)."""
    known = {**RUNTIME_HYPERPARAMETERS, **spec}
    # SageMaker itself may add reserved names (e.g. "_tuning_objective_metric", "sagemaker_*").
    given = {k: v for k, v in raw.items() if not k.startswith(("_", "sagemaker_"))}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise HyperparameterError(
            f"unknown hyperparameter(s) {', '.join(unknown)}; accepted: {', '.join(sorted(known))}"
        )
    values = {name: h.default for name, h in known.items()}
    for name, value in given.items():
        values[name] = known[name].parse(name, value)
    return values


def read_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text() or "{}")
    except ValueError as exc:
        raise HyperparameterError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise HyperparameterError(f"{path} must hold a JSON object, not {type(data).__name__}")
    return data
