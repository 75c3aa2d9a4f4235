"""State, locking, ARNs, events and helpers shared by the local SageMaker's operation groups."""

from __future__ import annotations

import copy
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from local_aws.sagemaker.runners import ChildProcesses
from local_aws.scenario import Scenario
from local_aws.wire import AwsError

log = logging.getLogger("local_aws.sagemaker")

ACCOUNT_ID = os.environ.get("MOTO_ACCOUNT_ID", "123456789012")
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


@dataclass
class RegionState:
    """One region's resources; keys are lowercased names (SageMaker names are case-insensitive)."""

    training_jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    processing_jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    endpoint_configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    package_groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    packages: dict[str, dict[str, Any]] = field(default_factory=dict)  # by ARN
    tags: dict[str, dict[str, str]] = field(default_factory=dict)  # by ARN


class EventLog:
    """Every status change, in order: tests assert on transitions that polling could miss."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[dict[str, Any]] = []

    def record(self, kind: str, name: str, status: str, detail: str | None = None) -> None:
        event = {"time": time.time(), "kind": kind, "name": name, "status": status, "detail": detail}
        with self._lock:
            self._events.append(event)
        log.info("%s %s -> %s%s", kind, name, status, f" ({detail})" if detail else "")

    def clear(self) -> None:
        with self._lock:
            self._events.clear()

    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._events)


def public(record: dict[str, Any]) -> dict[str, Any]:
    """The Describe* view of a record: private keys (leading underscore) removed, deep-copied."""
    return copy.deepcopy({k: v for k, v in record.items() if not k.startswith("_") and v is not None})


def validate_name(value: str, field_name: str) -> str:
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise AwsError(
            "ValidationException",
            f"1 validation error detected: Value '{value}' at '{field_name}' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}",
        )
    return value


class ServiceCore:
    """Holds the state and the collaborators every operation group uses."""

    def __init__(
        self,
        *,
        scenario: Scenario,
        events: EventLog,
        job_runner: Any,
        endpoint_runner: Any,
        state_dir: Path,
    ) -> None:
        self.scenario = scenario
        self.events = events
        self.job_runner = job_runner
        self.endpoint_runner = endpoint_runner
        self.state_dir = Path(state_dir)
        self.base_url: str | None = None  # set once the server is bound; runners call back through it
        self.lock = threading.RLock()
        self._regions: dict[str, RegionState] = {}
        self._clients: dict[tuple[str, str, str], Any] = {}
        self._clients_lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        self.processes = ChildProcesses()  # every process the runners start (RunnerContext.processes)
        # local_aws.iam.enforcer.LocalIam when policies are enforced: jobs and endpoints then run
        # as their role, which SageMaker assumes as the service (trust policy checked).
        self.iam: Any = None

    # -- state -------------------------------------------------------------------------------
    def region(self, name: str) -> RegionState:
        with self.lock:
            return self._regions.setdefault(name, RegionState())

    def all_regions(self) -> list[tuple[str, RegionState]]:
        with self.lock:
            return list(self._regions.items())

    @staticmethod
    def arn(region: str, kind: str, name: str) -> str:
        return f"arn:aws:sagemaker:{region}:{ACCOUNT_ID}:{kind}/{name.lower()}"

    # -- what authorization needs to know (local_aws.iam.actions) --------------------------------
    def endpoint_config_kms_key(self, region: str, name: str) -> str | None:
        with self.lock:
            config = self.region(region).endpoint_configs.get(name.lower())
            return config.get("KmsKeyId") if config else None

    def next_model_package_version(self, region: str, group: str) -> int:
        with self.lock:
            name = group.rsplit("/", 1)[-1] if group.startswith("arn:") else group
            found = self.region(region).package_groups.get(name.lower())
            return int(found["_next_version"]) if found else 1

    def store_tags(self, region: str, arn: str, tags: list[dict[str, str]] | None) -> None:
        if tags:
            self.region(region).tags.setdefault(arn, {}).update({t["Key"]: t["Value"] for t in tags})

    # -- collaborators ---------------------------------------------------------------------------
    def client(self, region: str, service: str, credentials: dict[str, str] | None = None) -> Any:
        """A boto3 client for this same local AWS (runners write S3 objects and logs through it),
        as the account root or, with ``credentials``, as the role session they belong to."""
        access_key = (credentials or {}).get("AccessKeyId", "testing")
        key = (region, service, access_key)
        with self._clients_lock:
            if key not in self._clients:
                self._clients[key] = boto3.client(
                    service,
                    endpoint_url=self.base_url,
                    region_name=region,
                    aws_access_key_id=access_key,
                    aws_secret_access_key=(credentials or {}).get("SecretAccessKey", "testing"),
                    aws_session_token=(credentials or {}).get("SessionToken"),
                    config=Config(retries={"max_attempts": 2, "mode": "standard"}),
                )
            return self._clients[key]

    def spawn(self, target: Callable[..., None], *args: Any) -> None:
        def guarded() -> None:
            try:
                target(*args)
            except AwsError as error:  # the resource was deleted or reset while the worker ran
                log.info("worker %s%r stopped: %s", target.__name__, args, error.message)
            except Exception:  # a worker must never die silently: the resource would hang forever
                log.exception("worker %s%r crashed", target.__name__, args)

        thread = threading.Thread(target=guarded, name=f"sagemaker-{target.__name__}", daemon=True)
        with self.lock:
            self._workers = [t for t in self._workers if t.is_alive()]
            self._workers.append(thread)
        thread.start()

    def work_dir(self, kind: str, name: str) -> Path:
        path = self.state_dir / "sagemaker" / kind / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def log_writer(
        self, region: str, group: str, name: str, credentials: dict[str, str] | None = None
    ) -> Callable[[str], None]:
        """A function appending lines to a CloudWatch log stream named as SageMaker names them,
        written with the job's or endpoint's role session when there is one."""
        stream = f"{name}/algo-1-{int(time.time())}"
        created = False

        def write(line: str) -> None:
            nonlocal created
            logs = self.client(region, "logs", credentials)
            try:
                if not created:
                    try:
                        logs.create_log_group(logGroupName=group)
                    except logs.exceptions.ResourceAlreadyExistsException:
                        pass
                    logs.create_log_stream(logGroupName=group, logStreamName=stream)
                    created = True
                logs.put_log_events(
                    logGroupName=group,
                    logStreamName=stream,
                    logEvents=[{"timestamp": int(time.time() * 1000), "message": line}],
                )
            except Exception:  # logs are a convenience; never fail a job because of them
                log.warning("could not write log line for %s", name, exc_info=True)

        return write
