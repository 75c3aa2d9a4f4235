"""Request parsing for ``POST /invocations``: bytes in, a float matrix out, or a ``PayloadError``
with the HTTP status and a message a client can act on. Nothing here raises anything else, so bad
input can never become a 500 (tests/test_template_units.py fuzzes this)."""

from __future__ import annotations

import math
from itertools import chain

import numpy as np
import orjson

JSON = "application/json"
CSV = "text/csv"
JSON_LINES = "application/jsonlines"  # SageMaker batch transform and Model Monitor use it
CONTENT_TYPES = (JSON, CSV, JSON_LINES)
# Tree models (scikit-learn's among them) compute in float32: a larger value would become infinity.
MAX_ABS_VALUE = float(np.finfo(np.float32).max)  # pylint: disable=no-member  # finfo computes its attributes
_BOM = b"\xef\xbb\xbf"  # a UTF-8 byte order mark, as Excel and some Windows tools write


class PayloadError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def parse(body: bytes, content_type: str | None, features: tuple[str, ...], max_records: int) -> np.ndarray:
    kind = media_type(content_type)
    if kind not in CONTENT_TYPES:
        shown = repr(content_type) if content_type else "missing"
        raise PayloadError(415, f"unsupported Content-Type {shown}; send {', '.join(CONTENT_TYPES)}")
    if body.startswith(_BOM):
        body = body[len(_BOM) :]
    if not body.strip():
        raise PayloadError(400, "empty payload: send at least one record")
    if kind == JSON:
        return _json_rows(body, features, max_records)
    if kind == JSON_LINES:
        return _json_lines_rows(body, features, max_records)
    return _csv_rows(body, features, max_records)


def _check_count(count: int, max_records: int) -> None:
    if count > max_records:
        raise PayloadError(413, f"{count} records in one request; the limit is {max_records}")


def _fast_matrix(rows: list, width: int, exact_types: bool) -> np.ndarray | None:
    """The matrix when every row is well-formed, found in one vectorised pass; None when anything is
    off, and the slow path then finds the first problem and names it. JSON rows must hold numbers
    (``exact_types``): numpy alone would also accept "1.5" or true."""
    if not all(type(row) is list and len(row) == width for row in rows):
        return None
    if exact_types and not set(map(type, chain.from_iterable(rows))) <= {int, float}:
        return None
    try:
        matrix = np.fromiter(chain.from_iterable(rows), dtype=float, count=len(rows) * width)
    except (ValueError, TypeError, OverflowError):
        return None
    # False for NaN and infinity too; the slow path then names the value.
    return matrix.reshape(len(rows), width) if (np.abs(matrix) <= MAX_ABS_VALUE).all() else None


def _json_rows(body: bytes, features: tuple[str, ...], max_records: int) -> np.ndarray:
    try:
        # orjson: about 10x faster than the standard library on a 100-record body; it also refuses
        # what JSON does not allow (NaN, Infinity, numbers beyond float range, invalid UTF-8).
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(400, f"malformed JSON: {exc}") from None
    if isinstance(document, dict) and "instances" in document:
        if len(document) != 1:
            extra = sorted(k for k in document if k != "instances")
            raise PayloadError(400, f'unexpected top-level key(s) {extra}; send only "instances"')
        records = document["instances"]
        if not isinstance(records, list):
            raise PayloadError(400, '"instances" must be a list of records')
    elif isinstance(document, dict):
        records = [document]  # one record by feature name
    elif isinstance(document, list):
        # A flat list of values is one record; a list of lists/objects is many.
        records = [document] if document and not isinstance(document[0], (list, dict)) else document
    else:
        raise PayloadError(400, 'JSON payload must be a record, a list of records or {"instances": [...]}')
    return _records_matrix(records, features, max_records)


def _json_lines_rows(body: bytes, features: tuple[str, ...], max_records: int) -> np.ndarray:
    """One JSON record (an object by feature name or a list in FEATURES order) per line."""
    lines = [line for line in body.split(b"\n") if line.strip()]
    _check_count(len(lines), max_records)
    records = []
    for number, line in enumerate(lines, start=1):
        try:
            records.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            raise PayloadError(400, f"malformed JSON Lines: line {number}: {exc}") from None
    return _records_matrix(records, features, max_records)


def _records_matrix(records: list, features: tuple[str, ...], max_records: int) -> np.ndarray:
    if not records:
        raise PayloadError(400, "empty payload: send at least one record")
    _check_count(len(records), max_records)
    fast = _fast_matrix(records, len(features), exact_types=True)
    if fast is not None:
        return fast
    return np.asarray([_json_record(i, record, features) for i, record in enumerate(records)], dtype=float)


def _json_record(index: int, record: object, features: tuple[str, ...]) -> list[float]:
    if isinstance(record, dict):
        if len(record) != len(features) or any(f not in record for f in features):
            missing = [f for f in features if f not in record]
            unknown = sorted(str(k) for k in record if k not in features)
            parts = [
                f"missing feature(s) {', '.join(missing)}" if missing else "",
                f"unknown feature(s) {', '.join(unknown)}" if unknown else "",
            ]
            raise PayloadError(400, f"record {index}: " + "; ".join(p for p in parts if p))
        values = [record[f] for f in features]
    elif isinstance(record, list):
        if len(record) != len(features):
            raise PayloadError(
                400,
                f"record {index}: {len(record)} features, expected {len(features)} ({', '.join(features)})",
            )
        values = record
    else:
        raise PayloadError(400, f"record {index}: expected an object or a list, got {_type_name(record)}")
    row = []
    for position, value in enumerate(values):
        # bool is an int subclass in Python, but true/false is not a valid feature value.
        # (orjson has already refused NaN, Infinity and numbers beyond float range.)
        if type(value) is float or type(value) is int:
            _check_range(f"record {index}, feature {features[position]}", value)
            row.append(float(value))
            continue
        raise PayloadError(
            400,
            f"record {index}, feature {features[position]}: expected a number, "
            f"got {_type_name(value)} {_preview(value)}",
        )
    return row


def _csv_rows(body: bytes, features: tuple[str, ...], max_records: int) -> np.ndarray:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(400, f"malformed CSV: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if lines and [c.strip() for c in lines[0].split(",")] == list(features):
        lines = lines[1:]  # an optional header row naming the features in order
    if not lines:
        raise PayloadError(400, "empty payload: send at least one record")
    _check_count(len(lines), max_records)
    width = len(features)
    fast = _fast_matrix([line.split(",") for line in lines], width, exact_types=False)
    if fast is not None:
        return fast
    rows = []
    for number, line in enumerate(lines, start=1):
        cells = line.split(",")
        if len(cells) != width:
            raise PayloadError(
                400, f"CSV row {number}: {len(cells)} values, expected {width} ({', '.join(features)})"
            )
        row = []
        for position, cell in enumerate(cells):
            try:
                value = float(cell)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                raise PayloadError(
                    400,
                    f"CSV row {number}, feature {features[position]}: "
                    f"{_preview(cell.strip())} is not a finite number",
                )
            _check_range(f"CSV row {number}, feature {features[position]}", value)
            row.append(value)
        rows.append(row)
    return np.asarray(rows, dtype=float)


def _check_range(where: str, value: float) -> None:
    if abs(value) > MAX_ABS_VALUE:
        raise PayloadError(
            400,
            f"{where}: {_preview(value)} is outside the float32 range "
            f"(±{MAX_ABS_VALUE:.7g}) the model computes in",
        )


def _type_name(value: object) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def _preview(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
