"""Turns pydantic validation errors into messages that name the field and the value."""

from __future__ import annotations

from pydantic import ValidationError


class ConfigurationError(ValueError):
    """Invalid platform or pipeline configuration; synth stops with this message."""


def describe(error: ValidationError, *, where: str) -> ConfigurationError:
    lines = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "(root)"
        message = item["msg"].removeprefix("Value error, ")
        value = item.get("input")
        shown = "" if isinstance(value, dict) else f" (got {value!r})"
        lines.append(f"  {field}: {message}{shown}")
    return ConfigurationError(f"invalid configuration in {where}:\n" + "\n".join(lines))
