"""Waiting for SageMaker in the triggerer: the Amazon provider's SageMakerTrigger and boto waiters,
with limits long enough for the platform's jobs and endpoint changes.

Imported by the operators (mlops_dags.operators) and by the triggerer, which rebuilds the trigger
from ``serialize()``: this module keeps to the provider and the standard library.
"""

from __future__ import annotations

import inspect
from datetime import timedelta

from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger

from mlops_dags import settings

# Provider 9.34 (Airflow 3.3.1 image) names the polling arguments waiter_delay/waiter_max_attempts;
# 9.22 (Airflow 2.11.2 image) poke_interval/max_attempts, deprecated in 9.34.
_NEW_ARGUMENTS = "waiter_delay" in inspect.signature(SageMakerTrigger.__init__).parameters

ENDPOINT_DELETED = "endpoint_deleted"


class SageMakerWaitTrigger(SageMakerTrigger):
    """The provider's SageMakerTrigger (its waiters, its aiobotocore client), with what the DAGs need
    on both provider versions:

    - a wait that fails or runs out of attempts ends in an ``error`` event, never in an exception:
      provider 9.22 raises, which fails the task with a bare "Trigger failure" and loses the
      job's FailureReason; the operators read the reason themselves (mlops_dags.operators);
    - one more kind, ``endpoint_deleted`` (boto's waiter of that name), for a failed endpoint
      deleted before it is created again;
    - ``end_task``: when the wait succeeds, the task ends here (TaskSuccessEvent) instead of
      resuming on a worker only to return. A failed wait still resumes the task, whose failure
      (and its callbacks) carry the job's reason. No XCom comes with it: Airflow 3.3.1 stores a
      trigger's XComs as JSON text, which tasks then read back as a string; the tasks after a wait
      find the job's results where SageMaker documents it puts them.
    """

    def __init__(
        self,
        job_name: str,
        job_type: str,
        waiter_delay: int = 30,
        waiter_max_attempts: int = 480,
        aws_conn_id: str | None = "aws_default",
        end_task: bool = False,
    ):
        polling = ("waiter_delay", "waiter_max_attempts") if _NEW_ARGUMENTS else ("poke_interval", "max_attempts")
        super().__init__(
            job_name=job_name,
            job_type=job_type,
            aws_conn_id=aws_conn_id,
            **dict(zip(polling, (waiter_delay, waiter_max_attempts), strict=True)),
        )
        self.delay_seconds = waiter_delay
        self.max_polls = waiter_max_attempts
        self.connection_id = aws_conn_id
        self.end_task = end_task

    def serialize(self):
        # Provider 9.22 serializes under its own class path, which would drop this subclass.
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job_name": self.job_name,
                "job_type": self.job_type,
                "waiter_delay": self.delay_seconds,
                "waiter_max_attempts": self.max_polls,
                "aws_conn_id": self.connection_id,
                "end_task": self.end_task,
            },
        )

    @staticmethod
    def _get_job_type_waiter(job_type: str) -> str:
        if job_type.lower() == ENDPOINT_DELETED:
            return ENDPOINT_DELETED
        return SageMakerTrigger._get_job_type_waiter(job_type)

    @staticmethod
    def _get_waiter_arg_name(job_type: str) -> str:
        if job_type.lower() == ENDPOINT_DELETED:
            return "EndpointName"
        return SageMakerTrigger._get_waiter_arg_name(job_type)

    @staticmethod
    def _get_response_status_key(job_type: str) -> str:
        if job_type.lower() == ENDPOINT_DELETED:
            return "EndpointStatus"
        return SageMakerTrigger._get_response_status_key(job_type)

    async def run(self):
        from airflow.triggers.base import TaskSuccessEvent, TriggerEvent

        try:
            async for event in super().run():
                if self.end_task and succeeded(event.payload):
                    yield TaskSuccessEvent()
                else:
                    yield event
                return
        except Exception as exc:  # noqa: BLE001 - provider 9.22 raises AirflowException on a failed wait
            yield TriggerEvent({"status": "error", "message": str(exc), "job_name": self.job_name})


def succeeded(event) -> bool:
    """Whether a resumed task's event says the wait succeeded: a trigger's ``{"status": "success"}``,
    or a TaskSuccessEvent's payload, which dag.test() hands to the resumed task (Airflow 3: a dict,
    2.11: the state itself) where a triggerer would have ended the task."""
    if isinstance(event, dict):
        return event.get("status") == "success" or event.get("task_instance_state") == "success"
    return str(getattr(event, "value", event)) == "success"


def wait_trigger(job_name: str, job_type: str, wait_seconds: float, end_task: bool = False) -> SageMakerWaitTrigger:
    """A trigger polling every check interval for up to ``wait_seconds``."""
    return SageMakerWaitTrigger(
        job_name=job_name,
        job_type=job_type,
        waiter_delay=max(1, round(settings.check_interval_seconds())),
        waiter_max_attempts=settings.waiter_attempts(wait_seconds),
        aws_conn_id=settings.AWS_CONN_ID,
        end_task=end_task,
    )


def defer_timeout(wait_seconds: float) -> timedelta:
    """Airflow fails a deferred task whose trigger has not fired by then (a lost triggerer): a few
    polls after the trigger itself gives up."""
    return timedelta(seconds=wait_seconds + 5 * settings.check_interval_seconds())


class WaitsInTriggerer:
    """Mixin for the provider's SageMaker operators: whatever SageMakerTrigger their ``execute``
    builds (60 attempts for jobs, 480 for endpoints, whatever the job's runtime) is replaced by a
    SageMakerWaitTrigger covering ``self.wait_seconds``, set by the subclass before it defers."""

    wait_seconds: float = 3600.0

    # Whether the triggerer ends the task when the wait succeeds (it returns nothing then).
    end_task: bool = False

    def defer(self, *, trigger, method_name, kwargs=None, timeout=None):
        if isinstance(trigger, SageMakerTrigger) and not isinstance(trigger, SageMakerWaitTrigger):
            trigger = wait_trigger(trigger.job_name, trigger.job_type, self.wait_seconds, self.end_task)
            timeout = defer_timeout(self.wait_seconds)
        super().defer(trigger=trigger, method_name=method_name, kwargs=kwargs, timeout=timeout)
