"""Reads a SageMaker channel (a folder of CSV files with a header row) into arrays."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

import team_model


class DatasetError(ValueError):
    """The data cannot be used; the message names the file, line and column."""


def read_channel(directory: Path) -> tuple[np.ndarray, np.ndarray]:
    """Features in ``team_model.FEATURES`` order and targets (class indices or floats)."""
    files = sorted(p for p in Path(directory).rglob("*.csv") if p.is_file())
    if not files:
        raise DatasetError(f"no CSV files in {directory}")
    rows: list[list[float]] = []
    targets: list[float] = []
    for path in files:
        _read_file(path, rows, targets)
    if not rows:
        raise DatasetError(f"the CSV files in {directory} have no data rows")
    X = np.asarray(rows, dtype=float)
    y = np.asarray(targets, dtype=int if team_model.PROBLEM_TYPE == "classification" else float)
    return X, y


def _read_file(path: Path, rows: list, targets: list) -> None:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            return
        header = [h.strip() for h in header]
        missing = [c for c in (*team_model.FEATURES, team_model.LABEL) if c not in header]
        if missing:
            raise DatasetError(f"{path}: missing column(s) {', '.join(missing)} in the header row")
        feature_idx = [header.index(f) for f in team_model.FEATURES]
        label_idx = header.index(team_model.LABEL)
        for line_no, record in enumerate(reader, start=2):
            if not record:
                continue
            if len(record) != len(header):
                raise DatasetError(f"{path}:{line_no}: {len(record)} values, the header has {len(header)}")
            rows.append(
                [_number(path, line_no, team_model.FEATURES[i], record[j]) for i, j in enumerate(feature_idx)]
            )
            targets.append(_target(path, line_no, record[label_idx].strip()))


def _number(path: Path, line_no: int, column: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DatasetError(f"{path}:{line_no}: column {column}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise DatasetError(f"{path}:{line_no}: column {column}: {text!r} is not a finite number")
    return value


def _target(path: Path, line_no: int, text: str) -> float:
    if team_model.PROBLEM_TYPE != "classification":
        return _number(path, line_no, team_model.LABEL, text)
    if text in team_model.CLASSES:
        return team_model.CLASSES.index(text)
    raise DatasetError(f"{path}:{line_no}: label {text!r} is not one of {', '.join(team_model.CLASSES)}")
