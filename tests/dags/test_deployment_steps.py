"""What deploy_endpoint does next, from the endpoint's state and the tags a deployment puts on it
before changing it (mlops_dags.deployment.next_endpoint_step): pure decisions, no AWS."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from mlops_dags import deployment
from mlops_dags.compat import AirflowFailException

RUN, OTHER = "manual__2026-01-02T03:04:05+00:00", "manual__2026-01-01T00:00:00+00:00"
NEW, OLD = "p--m-v1-1-0-r0-20260102030405", "p--m-v1-0-0-r0-20260101000000"
BEFORE_UPDATE, AFTER_UPDATE = datetime(2026, 1, 2, 3, 5, tzinfo=UTC), datetime(2026, 1, 2, 3, 7, tzinfo=UTC)


def endpoint(status: str, serving: str, modified: datetime = AFTER_UPDATE, **extra) -> dict:
    return {
        "EndpointName": "p--m",
        "EndpointStatus": status,
        "EndpointConfigName": serving,
        "LastModifiedTime": modified,
        **extra,
    }


def intent(run: str = RUN, previous: str | None = OLD, at: datetime = datetime(2026, 1, 2, 3, 6, tzinfo=UTC)) -> dict:
    release = {"run_name": NEW}
    tags = {t["Key"]: t["Value"] for t in deployment.intent_tags(release, previous, run)}
    tags[deployment.DEPLOY_STARTED_TAG] = str(at.timestamp())
    return tags


def step(current, tags):
    return deployment.next_endpoint_step(current, tags, new=NEW, airflow_run_id=RUN)


def test_first_deployment_creates():
    assert step(None, {}).action == "create"


def test_an_endpoint_serving_another_config_is_updated_recording_what_served():
    assert step(endpoint("InService", OLD), {}) == deployment.EndpointStep("update", previous=OLD, status="InService")


def test_a_change_in_progress_is_waited_for_first():
    assert step(endpoint("Updating", OLD), {}).action == "wait"


def test_a_retry_after_update_endpoint_still_knows_the_previous_config():
    """Issue 11: the task died right after UpdateEndpoint; its retry finds the endpoint on the new
    config, and must not report "unchanged" with nothing to roll back to."""
    assert step(endpoint("Updating", OLD), intent()) == deployment.EndpointStep("wait", previous=OLD, status="Updating")
    done = step(endpoint("InService", NEW), intent())
    assert done == deployment.EndpointStep("verify", previous=OLD, status="InService")
    assert deployment.deployed(done) == {"previous_config": OLD, "action": "updated"}


def test_redeploying_what_already_served_before_the_run_is_unchanged():
    unchanged = step(endpoint("InService", NEW), intent(run=OTHER))
    assert deployment.deployed(unchanged) == {"previous_config": None, "action": "unchanged"}


def test_an_update_of_this_run_that_was_rolled_back_fails_even_on_a_retry():
    rolled_back = endpoint("InService", OLD, FailureReason="alarm p--m-5xx in ALARM")
    with pytest.raises(AirflowFailException, match=f"rolled back: it still serves {OLD} .alarm"):
        step(rolled_back, intent())


def test_a_retry_whose_update_was_never_sent_sends_it():
    # Tagged, then the worker died before UpdateEndpoint: the endpoint has not changed since.
    assert step(endpoint("InService", OLD, modified=BEFORE_UPDATE), intent()).action == "update"


def test_a_failed_endpoint_is_deleted_unless_this_run_just_failed_to_create_it():
    assert step(endpoint("Failed", OLD), {}).action == "delete"
    with pytest.raises(AirflowFailException, match="nothing was serving before"):
        step(endpoint("Failed", NEW, FailureReason="ping health check"), intent(previous=None))
