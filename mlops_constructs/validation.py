"""Configuration errors that teach: each names the file, the environment, the field path, the
value, and what to do about it."""

from __future__ import annotations

import difflib
import os
import sys
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from mlops_core.pipeline_config import (
    INSTANCE_TYPE_PATTERN,
    Autoscaling,
    EndpointSettings,
    EvaluationSettings,
    QualityGate,
    Retraining,
    TrainingSettings,
)

# What a value matching a pattern looks like, instead of the regular expression.
PATTERN_HINTS = {
    INSTANCE_TYPE_PATTERN: "must be a SageMaker instance type such as ml.m5.large",
    r"^[\w.-]+(/[\w.-]+)+$": "must be a GitLab project path such as group/project",
}

# (section heading, the rest of the location) for an error's location, e.g. the environment an
# error of environments.yaml is in.
Sectioner = Callable[[tuple[str | int, ...]], tuple[str, tuple[str | int, ...]]]


class ConfigurationError(ValueError):
    """Invalid platform or pipeline configuration; synth stops with this message."""

    headline = "configuration error"


def display_path(path: str | Path) -> str:
    """``path`` relative to the working directory when it is inside it (as a user typed it)."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def field_path(loc: tuple[str | int, ...]) -> str:
    """``("endpoint", "autoscaling", "min_capacity")`` -> ``endpoint.autoscaling.min_capacity``;
    list items as ``alert_emails[0]``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f"{'.' if text else ''}{part}"
    return text


def describe(
    error: ValidationError,
    *,
    where: str,
    model: type[BaseModel] | None = None,
    prefix: tuple[str | int, ...] = (),
    section: Sectioner | None = None,
) -> ConfigurationError:
    """One line per problem: ``  <field path>: <what is wrong and how to fix it> (got <value>)``,
    under a heading naming ``where`` (and the section, e.g. the environment, when ``section`` is
    given). ``model`` (the validated class, ``prefix`` being where it sits in the configuration)
    lets an unknown setting be answered with the known ones."""
    sections: dict[str, list[str]] = {}
    for item in error.errors(include_url=False):
        relative = tuple(item["loc"])
        heading, loc = section((*prefix, *relative)) if section else ("", (*prefix, *relative))
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = _unknown_setting(model, relative)
        elif item["type"] == "missing":
            message = "required, but not set"
        elif item["type"] == "string_pattern_mismatch":
            message = PATTERN_HINTS.get(item.get("ctx", {}).get("pattern"), message)
        value = item.get("input")
        shown = "" if isinstance(value, dict) or item["type"] == "missing" else f" (got {value!r})"
        sections.setdefault(heading, []).append(f"  {field_path(loc) or '(whole file)'}: {message}{shown}")
    text = "\n".join(f"{where}{heading}:\n" + "\n".join(lines) for heading, lines in sections.items())
    return ConfigurationError(text)


def _unknown_setting(model: type[BaseModel] | None, loc: tuple[str | int, ...]) -> str:
    known = _fields_at(model, loc[:-1]) if model else []
    if not known:
        return "unknown setting: remove it"
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown setting; {hint}the settings here are: {', '.join(known)}"


def _fields_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """The field names of the model found at ``loc`` inside ``model``."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue  # an item of a list or tuple: the annotation was unwrapped already
        if not (isinstance(current, type) and issubclass(current, BaseModel)) or part not in current.model_fields:
            return []
        current = _model_in(current.model_fields[part].annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _model_in(annotation: Any) -> Any:
    """The BaseModel inside ``X | None``, ``tuple[X, ...]``, ``list[X]`` (else the annotation)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, tuple, list):
        for argument in typing.get_args(annotation):
            found = _model_in(argument)
            if isinstance(found, type) and issubclass(found, BaseModel):
                return found
    return annotation


# Where each typed prop sits in the pipeline configuration, so an error raised when a project file
# builds one (QualityGate(threshold=1.5)) names the same field path as the dict form would.
PROP_PATHS: dict[type[BaseModel], tuple[str, ...]] = {
    TrainingSettings: ("training",),
    EvaluationSettings: ("evaluation",),
    QualityGate: ("gate",),
    EndpointSettings: ("endpoint",),
    Autoscaling: ("endpoint", "autoscaling"),
    Retraining: ("retraining",),
}
# Frames skipped to find the caller of a construct: this package's, jsii's and typeguard's.
_OWN_CODE = (str(Path(__file__).resolve().parent), f"{os.sep}jsii{os.sep}", f"{os.sep}typeguard{os.sep}")


def typed_prop_error(error: ValidationError, *, where: str) -> ConfigurationError | None:
    """The ConfigurationError for a typed prop that could not be built, or None for another model."""
    model = next((cls for cls in PROP_PATHS if cls.__name__ == error.title), None)
    if model is None:
        return None
    return describe(error, where=where, model=model, prefix=PROP_PATHS[model])


def call_site() -> str | None:
    """``file, line N`` of the code that created the construct (a project file, a team's stack),
    skipping this package's and the CDK's frames."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not any(part in filename for part in _OWN_CODE) and not filename.startswith("<"):
            return f"{display_path(filename)}, line {frame.f_lineno}"
        frame = frame.f_back
    return None


def as_dict(value: BaseModel | Mapping[str, Any] | None) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_unset=True)
    return dict(value)
