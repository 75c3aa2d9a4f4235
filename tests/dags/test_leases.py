"""The model lease (mlops_dags.leases) against the local AWS's S3, which applies S3's conditional
writes as AWS documents them: If-None-Match: * fails with 412 when the key exists, If-Match with 412
when the ETag changed."""

from __future__ import annotations

import pytest
from mlops_dags import leases

pytestmark = pytest.mark.integration

BUCKET = "mlops-itest-leases"
DAG = "mlops_training_evaluation"


@pytest.fixture
def s3(boto):
    client = boto.client("s3")
    try:
        client.create_bucket(Bucket=BUCKET)
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass
    return client


def uri(name: str) -> str:
    return f"s3://{BUCKET}/itest/{name}/leases/{DAG}.json"


def active(*run_ids):
    return lambda lease: lease.run_id in run_ids


def test_the_first_run_takes_the_lease_and_its_retry_finds_it_again(s3):
    first = leases.claim(s3, uri("a"), dag_id=DAG, run_id="run-1", is_active=active())
    assert first.held_by(DAG, "run-1")
    again = leases.claim(s3, uri("a"), dag_id=DAG, run_id="run-1", is_active=active())
    assert again == first  # the same lease, not a new one


def test_a_second_run_is_refused_while_the_holder_runs_and_takes_over_once_it_ended(s3):
    leases.claim(s3, uri("b"), dag_id=DAG, run_id="run-1", is_active=active())
    held = leases.claim(s3, uri("b"), dag_id=DAG, run_id="run-2", is_active=active("run-1"))
    assert held.held_by(DAG, "run-1")
    assert leases.active_holder(s3, uri("b"), active("run-1")) == held
    taken = leases.claim(s3, uri("b"), dag_id=DAG, run_id="run-2", is_active=active())
    assert taken.held_by(DAG, "run-2")
    assert leases.active_holder(s3, uri("b"), active()) is None


def test_of_two_runs_racing_for_a_stale_lease_only_one_wins(s3):
    leases.claim(s3, uri("c"), dag_id=DAG, run_id="ended", is_active=active())

    def run_3_wins_while_run_2_decides(lease):
        # run-2 read the stale lease; before it writes, run-3 takes it over (its If-Match wins).
        if lease.run_id == "ended":
            leases.claim(s3, uri("c"), dag_id=DAG, run_id="run-3", is_active=active())
            return False
        return lease.run_id == "run-3"

    held = leases.claim(s3, uri("c"), dag_id=DAG, run_id="run-2", is_active=run_3_wins_while_run_2_decides)
    assert held.held_by(DAG, "run-3")  # run-2's conditional write lost: it waits for run-3
    assert leases.read(s3, uri("c"))[0].run_id == "run-3"


def test_a_first_claim_racing_another_first_claim_loses_cleanly(s3):
    # run-9 writes first between run-8's read (nothing there) and its If-None-Match write.
    original = s3.put_object
    raced = []

    def put_object(**kwargs):
        if not raced and kwargs.get("IfNoneMatch") == "*":
            raced.append(True)
            leases.claim(s3, uri("d"), dag_id=DAG, run_id="run-9", is_active=active())
        return original(**kwargs)

    s3.put_object = put_object
    held = leases.claim(s3, uri("d"), dag_id=DAG, run_id="run-8", is_active=active("run-9"))
    assert held.held_by(DAG, "run-9")
