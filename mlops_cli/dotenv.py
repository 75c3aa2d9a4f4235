"""GitLab ``artifacts:reports:dotenv`` files: ``KEY=value`` lines later jobs receive as variables."""

from __future__ import annotations

import re
from pathlib import Path

_KEY = re.compile(r"^[A-Z_][A-Z0-9_]*$")


def write_dotenv(path: Path, values: dict[str, str]) -> None:
    lines = []
    for key, value in values.items():
        if not _KEY.fullmatch(key):
            raise ValueError(f"dotenv key {key!r} is not a variable name")
        if "\n" in value or "\r" in value:
            raise ValueError(f"dotenv value of {key} spans lines")
        lines.append(f"{key}={value}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def read_dotenv(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key] = value
    return values
