"""One run per model at a time: a lease object in S3 names the Airflow run of a DAG that may work
on a model now; another run of that DAG for the same model waits (deferred, holding no worker
slot) until the holder's run is no longer queued or running.

Why our own: Airflow bounds runs per DAG (max_active_runs) and task instances per pool, never runs
per conf value, so it cannot serialize one model's runs while letting other models' runs proceed.
S3 conditional writes (If-None-Match / If-Match) make taking the lease atomic, and whether the
holder still works comes from Airflow itself (its run state): a lease whose run ended (succeeded,
failed, timed out) is simply taken over, with no expiry to tune and no release step that a killed
run could miss.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from mlops_dags import aws

log = logging.getLogger(__name__)

# S3 answers a conditional write that lost with 412 PreconditionFailed, or 409
# ConditionalRequestConflict when two conditional writes of one key race.
LOST_RACE = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}
ATTEMPTS = 5


@dataclass(frozen=True)
class Lease:
    dag_id: str
    run_id: str
    acquired_at: str

    def held_by(self, dag_id: str, run_id: str) -> bool:
        return (self.dag_id, self.run_id) == (dag_id, run_id)

    def describe(self) -> str:
        return f"run {self.run_id} of {self.dag_id} (since {self.acquired_at})"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def read(s3, uri: str) -> tuple[Lease, str] | None:
    """The lease in force and its ETag, or None when nobody ever took it."""
    bucket, key = aws.split_s3_uri(uri)
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
    except Exception as exc:
        if aws.is_not_found(exc):
            return None
        raise
    document = json.loads(response["Body"].read())
    return Lease(**{k: document[k] for k in ("dag_id", "run_id", "acquired_at")}), response["ETag"]


def claim(s3, uri: str, *, dag_id: str, run_id: str, is_active: Callable[[Lease], bool]) -> Lease:
    """Take the lease for ``run_id`` unless another run that ``is_active`` holds it; returns the
    lease in force afterwards (``held_by(dag_id, run_id)`` tells whether it is ours). A task retry
    of the holder finds its own lease."""
    bucket, key = aws.split_s3_uri(uri)
    mine = Lease(dag_id=dag_id, run_id=run_id, acquired_at=_now())
    body = json.dumps(asdict(mine)).encode()
    for _ in range(ATTEMPTS):
        current = read(s3, uri)
        if current is not None:
            lease, etag = current
            if lease.held_by(dag_id, run_id):
                return lease
            if is_active(lease):
                return lease
            log.info("taking over the lease %s from %s, which is no longer running", uri, lease.describe())
            condition = {"IfMatch": etag}
        else:
            condition = {"IfNoneMatch": "*"}
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json", **condition)
            return mine
        except Exception as exc:
            if aws.error_code(exc) not in LOST_RACE:
                raise
            log.info("another run wrote the lease %s first: reading it again", uri)
    raise RuntimeError(f"could not take or read the lease {uri} after {ATTEMPTS} attempts (too many runs racing)")


def active_holder(s3, uri: str, is_active: Callable[[Lease], bool]) -> Lease | None:
    """The run holding the lease when it still works, else None."""
    current = read(s3, uri)
    if current is None or not is_active(current[0]):
        return None
    return current[0]
