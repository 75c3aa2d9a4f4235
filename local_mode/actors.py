"""Who calls AWS in local mode, and the one place their boto3 sessions, clients and environment
variables come from.

On AWS every call is made by an identity: CloudFormation creates the app's resources, the
project's CI role runs the ``mlops`` tool and pushes images, the trigger Lambda runs as its role,
DAG tasks as MWAA's execution role, and a person (the operator) reads results and calls the
endpoint. Local mode names the actor of every call here, so that the actor's identity can be
enforced (assume its role from the templates) without touching the callers. Today every actor
uses the local AWS's default credentials.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Actor(StrEnum):
    PROVISIONER = "provisioner"  # creates the stacks' resources (CloudFormation on AWS)
    CI = "ci"  # the project's CI role: `mlops` CLI, image push
    TRIGGER_LAMBDA = "trigger-lambda"  # the trigger Lambda's handler
    DAG_TASKS = "dag-tasks"  # Airflow's task processes (MWAA's execution role)
    OPERATOR = "operator"  # the person running the demo: notifications, registry, endpoint calls


@dataclass
class Identities:
    """Sessions, clients and environment variables of each actor against one local AWS."""

    aws_env: dict[str, str]  # the local AWS's endpoint and default credentials (LocalAws.env)
    region: str

    def env(self, actor: Actor, *, project: str | None = None) -> dict[str, str]:
        """Environment variables for a process (or in-process handler) acting as ``actor``."""
        return dict(self.aws_env)

    def session(self, actor: Actor, *, project: str | None = None) -> Any:
        import boto3

        env = self.env(actor, project=project)
        return boto3.session.Session(
            aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
            aws_session_token=env.get("AWS_SESSION_TOKEN"),
            region_name=self.region,
        )

    def client(self, actor: Actor, service: str, *, project: str | None = None) -> Any:
        return self.session(actor, project=project).client(service)
