"""Dispatch of SageMaker JSON operations (``X-Amz-Target: SageMaker.<Operation>``)."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from local_aws.sagemaker.endpoint_metrics import METRICS
from local_aws.sagemaker.endpoints import EndpointOperations
from local_aws.sagemaker.jobs import JobOperations
from local_aws.sagemaker.lineage import LineageOperations
from local_aws.sagemaker.registry import RegistryOperations
from local_aws.wire import AwsError

log = logging.getLogger("local_aws.sagemaker")
SHUTDOWN_GRACE_SECONDS = 5.0  # SIGTERM to SIGKILL for every job and serve process at shutdown
WORKER_JOIN_SECONDS = 3.0  # then the workers get this long to record their jobs as Stopped


class SageMakerService(JobOperations, EndpointOperations, RegistryOperations, LineageOperations):
    def operations(self) -> list[str]:
        return sorted(name[3:] for name in dir(self) if name.startswith("op_"))

    def implements(self, operation: str) -> bool:
        return callable(getattr(self, f"op_{operation}", None))

    def call(self, operation: str, region: str, body: bytes) -> dict[str, Any]:
        try:
            params = json.loads(body or b"{}")
        except ValueError as exc:
            raise AwsError("SerializationException", f"Malformed request body: {exc}") from exc
        try:
            return getattr(self, f"op_{operation}")(region, params)
        except KeyError as exc:
            # botocore validates required members client-side; this only catches raw HTTP callers.
            raise AwsError("ValidationException", f"Missing required parameter {exc}") from exc

    def reset(self) -> None:
        """Forget every resource; running jobs and deployments are stopped first, with their processes."""
        self.shutdown()
        with self.lock:
            self._regions.clear()
        METRICS.clear()
        self.processes.reopen()

    def shutdown(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        """Stop every running training and processing job and every endpoint deployment, and every
        process their runners started: each job is told to stop, every process group gets SIGTERM,
        then SIGKILL after ``grace`` s; no new process starts until ``processes.reopen()``. Waits at
        most ``grace`` + ``WORKER_JOIN_SECONDS`` (+ whatever custom endpoint runners' stop takes)."""
        deployments = []
        for _, state in self.all_regions():
            with self.lock:
                for job in [*state.training_jobs.values(), *state.processing_jobs.values()]:
                    job["_stop"].set()  # the worker ends the job Stopped (AWS: SIGTERM, then Stopped)
                deployments += [
                    d for e in state.endpoints.values() if e.get("_fleet") for d in e["_fleet"].deployments()
                ]
                for endpoint in state.endpoints.values():
                    endpoint["_fleet"] = None
        # Every process at once, whatever its worker thread is doing (an endpoint's serve may still
        # be starting; a job's worker may be between two steps).
        self.processes.stop_all(grace)
        self._stop_all(deployments)  # custom runners may hold other resources
        self.shadow_copies.shutdown()
        self.close_captures()  # every captured invocation (shadow copies' too) is written before local AWS stops
        deadline = time.monotonic() + WORKER_JOIN_SECONDS
        with self.lock:
            workers = list(self._workers)
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
