"""The trigger every SageMaker wait of the DAGs defers on (mlops_dags.waits.SageMakerWaitTrigger),
on this Airflow version's Amazon provider (9.34 with Airflow 3.3.1, 9.22 with 2.11.2)."""

from __future__ import annotations

import asyncio

import pytest
from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger
from mlops_dags import waits


def run(trigger) -> list:
    async def collect():
        return [event async for event in trigger.run()]

    return asyncio.run(collect())


def test_the_triggerer_rebuilds_the_same_trigger_from_its_serialized_form():
    import importlib

    trigger = waits.wait_trigger("job-1", "training", wait_seconds=7200, end_task=True)
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)
    assert type(rebuilt) is waits.SageMakerWaitTrigger
    assert rebuilt.serialize() == (classpath, kwargs)
    assert (rebuilt.job_name, rebuilt.end_task) == ("job-1", True)


def test_polls_cover_the_wait_not_the_providers_60_attempts(monkeypatch):
    monkeypatch.setenv("MLOPS_CHECK_INTERVAL_SECONDS", "30")
    trigger = waits.wait_trigger("job-1", "training", wait_seconds=10 * 3600)
    assert trigger.delay_seconds == 30 and trigger.max_polls * 30 >= 10 * 3600


@pytest.mark.parametrize("job_type", ["training", "processing", "endpoint", "endpoint_deleted"])
def test_each_wait_uses_a_boto_or_provider_waiter(job_type):
    trigger = waits.wait_trigger("x", job_type, wait_seconds=60)
    waiter = trigger._get_job_type_waiter(job_type)
    assert waiter in {"TrainingJobComplete", "ProcessingJobComplete", "endpoint_in_service", "endpoint_deleted"}


def test_a_failed_wait_is_an_error_event_whichever_way_the_provider_reports_it(monkeypatch):
    from airflow.exceptions import AirflowException

    async def raising(self):  # provider 9.22: the waiter's terminal failure is raised
        raise AirflowException("Error while waiting for training job: Failed")
        yield  # pragma: no cover - an async generator

    monkeypatch.setattr(SageMakerTrigger, "run", raising)
    [event] = run(waits.wait_trigger("job-1", "training", wait_seconds=60, end_task=True))
    assert event.payload["status"] == "error" and "Failed" in event.payload["message"]
    assert event.payload["job_name"] == "job-1"


def test_a_successful_wait_ends_the_task_in_the_triggerer_when_asked(monkeypatch):
    from airflow.triggers.base import TaskSuccessEvent, TriggerEvent

    async def succeeding(self):
        yield TriggerEvent({"status": "success", "job_name": self.job_name})

    monkeypatch.setattr(SageMakerTrigger, "run", succeeding)
    [ended] = run(waits.wait_trigger("job-1", "training", wait_seconds=60, end_task=True))
    assert isinstance(ended, TaskSuccessEvent)
    [resumed] = run(waits.wait_trigger("job-1", "training", wait_seconds=60))
    assert not isinstance(resumed, TaskSuccessEvent) and resumed.payload["status"] == "success"


def test_a_resumed_task_reads_success_from_any_event_shape():
    from airflow.triggers.base import TaskSuccessEvent

    assert waits.succeeded({"status": "success"})
    assert waits.succeeded(TaskSuccessEvent().payload)  # what dag.test() hands the resumed task
    assert not waits.succeeded({"status": "error", "message": "x"})
    assert not waits.succeeded(None)
