"""Dispatch of SageMaker JSON operations (``X-Amz-Target: SageMaker.<Operation>``)."""

from __future__ import annotations

import json
import logging
from typing import Any

from local_aws.sagemaker.endpoints import EndpointOperations
from local_aws.sagemaker.jobs import JobOperations
from local_aws.sagemaker.registry import RegistryOperations
from local_aws.wire import AwsError

log = logging.getLogger("local_aws.sagemaker")


class SageMakerService(JobOperations, EndpointOperations, RegistryOperations):
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
        """Forget every resource (running jobs finish into the void; deployments are stopped)."""
        self.shutdown()
        with self.lock:
            self._regions.clear()

    def shutdown(self) -> None:
        """Stop every running endpoint deployment (runners may own processes)."""
        for _, state in self.all_regions():
            with self.lock:
                deployments = [e.get("_deployment") for e in state.endpoints.values()]
                for endpoint in state.endpoints.values():
                    endpoint["_deployment"] = None
            for deployment in deployments:
                if deployment is not None:
                    try:
                        self.endpoint_runner.stop(deployment)
                    except Exception:  # keep stopping the others
                        log.exception("could not stop a deployment")
