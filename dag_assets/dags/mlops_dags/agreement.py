"""Prediction agreement of a shadow trial: how often the candidate (the shadow variant) predicts what
production predicts for the same request, from the endpoint's data capture over the bake.

What it reads: SageMaker writes each variant's captured invocations under
``<DestinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm>-<ss>-<ms>-<id>.jsonl`` (the hour and
minute of the file's first record), one JSON record per line with ``endpointInput``,
``endpointOutput`` and ``eventMetadata`` (developer guide, "Capture data from real-time endpoint").
Only the files of the bake window are listed and read: the hour folders the window touches, and in
them the files started between ``CAPTURE_BATCH_SLACK`` before the window and its end (a file begun
just before the trial may still hold its first requests); records outside the window are skipped.

How a pair is made: a shadow copy is production's request replayed, so both records carry the same
input and, when the caller gave one, the same ``InferenceId`` ("added to the captured data", API
reference of InvokeEndpoint). A pair is a candidate record and a production record with the same
(inferenceId, input); equal inputs without an InferenceId are interchangeable, since production
answers the same input the same way. Each request's records (rows) are compared in order:
a classifier agrees when the label is the same, a regressor when the values differ by at most
``tolerance`` of the larger (``math.isclose(rel_tol=tolerance)``).

Why here and not a Processing job: over the bake's capture this is a few seconds of parsing in the
worker (benchmarks/shadow_comparison.py measures 100k pairs), far less than a job's start-up; the
objects are fetched by a small pool of threads so S3's latency does not add up.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import math
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

CAPTURE_BATCH_SLACK = timedelta(minutes=5)
READ_WORKERS = 8
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class Agreement:
    pairs: int  # requests answered by both variants and captured for both
    records: int  # predictions compared (a request may hold several records)
    agreeing: int

    @property
    def rate(self) -> float | None:
        return self.agreeing / self.records if self.records else None


def capture_objects(s3, destination: str, endpoint: str, variant: str, start: datetime, end: datetime) -> list[tuple]:
    """(bucket, key) of the variant's capture files that may hold records of [start, end]."""
    bucket, _, prefix = destination.split("://", 1)[1].partition("/")
    base = "/".join(p for p in (prefix.strip("/"), endpoint, variant) if p)
    earliest = start - CAPTURE_BATCH_SLACK
    hour = earliest.replace(minute=0, second=0, microsecond=0)
    found = []
    while hour <= end:
        folder = f"{base}/{hour:%Y/%m/%d/%H}/"
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder):
            for item in page.get("Contents", []):
                name = item["Key"][len(folder) :]
                try:
                    minute, second = int(name[0:2]), int(name[3:5])
                except ValueError:
                    continue  # not a capture file
                begun = hour.replace(minute=minute, second=second)
                if earliest <= begun <= end:
                    found.append((bucket, item["Key"]))
        hour += timedelta(hours=1)
    return found


def read_records(s3, objects: list[tuple], start: datetime, end: datetime) -> Iterator[dict]:
    """The capture records of ``objects`` whose inference time is within [start, end]."""
    # inferenceTime has whole seconds, in a format that sorts as time does
    first, last = start.astimezone(UTC).strftime(_TIME_FORMAT), end.astimezone(UTC).strftime(_TIME_FORMAT)

    def fetch(location: tuple) -> bytes:
        bucket, key = location
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    with ThreadPoolExecutor(READ_WORKERS) as pool:
        for body in pool.map(fetch, objects):
            for line in body.splitlines():
                if not line.strip():
                    continue
                record = json.loads(line)
                when = record.get("eventMetadata", {}).get("inferenceTime", "")
                if first <= when <= last:
                    yield record


def pair_key(record: dict) -> bytes:
    """What production's record and the shadow's copy of the same request share."""
    captured = record.get("captureData", {}).get("endpointInput", {})
    identity = f"{record.get('eventMetadata', {}).get('inferenceId', '')}\0{captured.get('data', '')}"
    return hashlib.blake2b(identity.encode(), digest_size=16).digest()


def predictions(output: dict) -> list:
    """The predictions of one captured ``endpointOutput``: the model template answers JSON
    ``{"predictions": [...]}``, JSON lines (one prediction a line) or CSV (a header row)."""
    data = output.get("data", "")
    if output.get("encoding") == "BASE64":
        data = base64.b64decode(data).decode("utf-8", errors="replace")
    media = output.get("observedContentType", "").split(";", 1)[0].strip().lower()
    if media == "text/csv":
        return list(csv.DictReader(io.StringIO(data)))
    if media == "application/jsonlines":
        return [json.loads(line) for line in data.splitlines() if line.strip()]
    document = json.loads(data)
    return document.get("predictions", []) if isinstance(document, dict) else list(document)


def _agrees(ours, theirs, problem_type: str, tolerance: float) -> bool:
    field = "label" if problem_type == "classification" else "value"
    if isinstance(ours, dict) and isinstance(theirs, dict):
        ours, theirs = ours.get(field, ours), theirs.get(field, theirs)
    if problem_type == "classification":
        return str(ours) == str(theirs)
    try:
        return math.isclose(float(ours), float(theirs), rel_tol=tolerance)
    except (TypeError, ValueError):
        return ours == theirs


def compare(production: Iterable[dict], candidate: Iterable[dict], *, problem_type: str, tolerance: float) -> Agreement:
    """Agreement of the candidate's captured answers with production's for the same requests."""
    answers = {}
    for record in production:
        output = record.get("captureData", {}).get("endpointOutput")
        if output is not None:
            answers.setdefault(pair_key(record), output)
    pairs = records = agreeing = 0
    for record in candidate:
        output = record.get("captureData", {}).get("endpointOutput")
        theirs = answers.get(pair_key(record))
        if output is None or theirs is None:
            continue
        pairs += 1
        try:
            ours, reference = predictions(output), predictions(theirs)
        except (ValueError, KeyError, AttributeError):  # an answer that is not predictions agrees with nothing
            records += 1
            continue
        records += max(len(ours), len(reference), 1)
        if len(ours) == len(reference):  # else the candidate answered another number of records: none agree
            agreeing += sum(_agrees(a, b, problem_type, tolerance) for a, b in zip(ours, reference, strict=True))
    return Agreement(pairs, records, agreeing)


def measure(s3, config, endpoint: str, production_variant: str, candidate_variant: str, start, end) -> Agreement:
    """The trial's agreement from the endpoint's data capture over [start, end]."""
    destination = config.data_capture_uri

    def records(variant: str) -> Iterator[dict]:
        objects = capture_objects(s3, destination, endpoint, variant, start, end)
        return read_records(s3, objects, start, end)

    shadow = config.deployment.shadow
    return compare(
        records(production_variant),
        records(candidate_variant),
        problem_type=config.problem_type,
        tolerance=shadow.agreement_tolerance,
    )


def as_dict(agreement: Agreement | None) -> dict | None:
    """As kept in the trial's XCom."""
    return None if agreement is None else asdict(agreement)
