"""Who calls AWS in local mode, and the one place their boto3 sessions, clients and environment
variables come from: each actor gets its credentials the way it gets them on AWS, and local AWS
refuses whatever the synthesized policies do not allow it.

- **provisioner** (CloudFormation on AWS) and **operator** (the person running the demo, reading
  notifications and the registry, calling the endpoint): the account.
- **CI**: the project's CI role (``mlops-<env>-ci-<project>``), obtained with
  ``AssumeRoleWithWebIdentity`` and a GitLab ID token of the MLOps project's release branch of that
  project in this environment (``models/<environment>/<project>``) with the audience the CI
  templates request.
- **trigger Lambda**: its role, assumed as ``lambda.amazonaws.com`` (the role's trust decides), in
  the ``AWS_*`` variables the Lambda runtime sets.
- **DAG tasks**: MWAA's execution role, assumed as ``airflow-env.amazonaws.com``. Airflow starts
  while the platform is provisioned, before the role exists, so its processes get a shared
  credentials file that is written once it does (boto3 reads it when a task creates a session), as
  MWAA's workers get the role's credentials from their environment.
- SageMaker jobs and endpoints run as the model's role: local SageMaker assumes it itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from local_aws.iam.web_identity import mint
from mlops_constructs.ci_access import AUDIENCE, model_project_role_name
from mlops_core.names import ci_release_branch

MWAA_SERVICE = "airflow-env.amazonaws.com"
LAMBDA_SERVICE = "lambda.amazonaws.com"
_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


class Actor(StrEnum):
    PROVISIONER = "provisioner"  # creates the stacks' resources (CloudFormation on AWS)
    CI = "ci"  # the project's CI role: `mlops` CLI, image push
    TRIGGER_LAMBDA = "trigger-lambda"  # the trigger Lambda's handler
    DAG_TASKS = "dag-tasks"  # Airflow's task processes (MWAA's execution role)
    OPERATOR = "operator"  # the person running the demo: notifications, registry, endpoint calls


@dataclass(frozen=True)
class CiIdentity:
    """What GitLab puts in a CI job's ID token (the claims AWS checks): the instance and the MLOps
    project whose pipeline runs (config/*.yaml ``ci:``)."""

    gitlab_url: str
    mlops_project_path: str

    def token(self, ref: str, *, lifetime_seconds: int = 300) -> str:
        """GitLab's ID token of a job on ``ref`` (it expires with the job: ``lifetime_seconds``)."""
        return mint(
            {
                "iss": self.gitlab_url.rstrip("/"),
                "aud": AUDIENCE,
                "sub": f"project_path:{self.mlops_project_path}:ref_type:branch:ref:{ref}",
                "project_path": self.mlops_project_path,
                "ref": ref,
                "ref_type": "branch",
                "ref_protected": "true",
            },
            lifetime_seconds=lifetime_seconds,
        )


@dataclass(frozen=True)
class Platform:
    """What the synthesized environment says about who runs what (from local_mode.cdk_env)."""

    account: str
    environment: str
    mwaa_environment_name: str
    mwaa_execution_role_arn: str
    trigger_function_name: str
    trigger_role_arn: str
    ci: CiIdentity


@dataclass
class Identities:
    """Sessions, clients and environment variables of each actor against one local AWS."""

    aws: Any  # local_aws.LocalAws
    credentials_file: Path  # where DAG tasks find the execution role's session
    platform: Platform | None = None
    _credentials: dict[tuple[Actor, str | None], dict[str, str]] = field(default_factory=dict)

    @property
    def region(self) -> str:
        return self.aws.region

    def bind(self, platform: Platform) -> None:
        """The platform is provisioned: its roles exist, DAG tasks get their role's session."""
        self.platform = platform
        _write_credentials_file(self.credentials_file, self._role_credentials(Actor.DAG_TASKS, None))

    def env(self, actor: Actor, *, project: str | None = None) -> dict[str, str]:
        """Environment variables for a process (or in-process handler) acting as ``actor``. The same
        sessions whether local AWS enforces policies or not: only the authorization differs."""
        root = dict(self.aws.env)
        if actor in (Actor.PROVISIONER, Actor.OPERATOR):
            return root
        if actor is Actor.DAG_TASKS:
            without_keys = {k: v for k, v in root.items() if k not in _KEYS}
            return {**without_keys, "AWS_SHARED_CREDENTIALS_FILE": str(self.credentials_file)}
        return {**root, **credentials_env(self._role_credentials(actor, project))}

    def session(self, actor: Actor, *, project: str | None = None) -> Any:
        import boto3

        if actor is Actor.DAG_TASKS:
            keys = _triple(self._role_credentials(actor, None))
        else:
            env = self.env(actor, project=project)
            keys = tuple(env.get(k) for k in _KEYS)
        return boto3.session.Session(
            aws_access_key_id=keys[0], aws_secret_access_key=keys[1], aws_session_token=keys[2], region_name=self.region
        )

    def client(self, actor: Actor, service: str, *, project: str | None = None) -> Any:
        return self.session(actor, project=project).client(service)

    # -- how each role's session is obtained --------------------------------------------------------
    def _role_credentials(self, actor: Actor, project: str | None) -> dict[str, str]:
        key = (actor, project if actor is Actor.CI else None)
        if key not in self._credentials:
            self._credentials[key] = self._assume(actor, project)
        return self._credentials[key]

    def _assume(self, actor: Actor, project: str | None) -> dict[str, str]:
        platform = self.platform
        if platform is None:
            raise RuntimeError(f"{actor} has no credentials before the platform is provisioned")
        arn = f"arn:aws:{{service}}:{self.region}:{platform.account}:{{resource}}"
        if actor is Actor.DAG_TASKS:
            source = arn.format(service="airflow", resource=f"environment/{platform.mwaa_environment_name}")
            return self.aws.service_credentials(platform.mwaa_execution_role_arn, MWAA_SERVICE, source_arn=source)
        if actor is Actor.TRIGGER_LAMBDA:
            source = arn.format(service="lambda", resource=f"function:{platform.trigger_function_name}")
            return self.aws.service_credentials(platform.trigger_role_arn, LAMBDA_SERVICE, source_arn=source)
        if actor is Actor.CI:
            if not project:
                raise ValueError("the CI actor acts for one project: pass project=")
            role = f"arn:aws:iam::{platform.account}:role/{model_project_role_name(platform.environment, project)}"
            return web_identity_credentials(
                self.aws, role, platform.ci.token(ci_release_branch(platform.environment, project))
            )
        raise ValueError(f"{actor} acts as the account")


def web_identity_credentials(aws: Any, role_arn: str, token: str) -> dict[str, str]:
    """``aws sts assume-role-with-web-identity`` as a CI job runs it (unsigned, the token only)."""
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    sts = boto3.client("sts", endpoint_url=aws.url, region_name=aws.region, config=Config(signature_version=UNSIGNED))
    response = sts.assume_role_with_web_identity(RoleArn=role_arn, RoleSessionName="gitlab-ci", WebIdentityToken=token)
    return response["Credentials"]


def credentials_env(credentials: dict[str, str]) -> dict[str, str]:
    """A role session's credentials as the AWS_* variables boto3 reads."""
    return dict(zip(_KEYS, _triple(credentials), strict=True))


def _triple(credentials: dict[str, str]) -> tuple[str, str, str]:
    return credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]


def _write_credentials_file(path: Path, credentials: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    key, secret, token = _triple(credentials)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(
        f"[default]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\naws_session_token = {token}\n"
    )
    tmp.chmod(0o600)
    tmp.replace(path)
