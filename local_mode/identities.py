"""Who makes each call in local mode, and how they get their credentials, as on AWS:

- **DAG tasks** run as the MWAA environment's execution role, which MWAA assumes as
  ``airflow-env.amazonaws.com`` (the role's trust policy decides);
- **the trigger Lambda** runs as its role, assumed as ``lambda.amazonaws.com``;
- **the ``mlops`` CLI in CI** runs as its project's CI role, obtained with
  ``AssumeRoleWithWebIdentity`` and a GitLab ID token for the MLOps project's release branch of
  that project in this environment (``models/<environment>/<project>``) with the audience the CI
  templates request;
- **SageMaker jobs and endpoints** run as the model's role (local SageMaker assumes it itself);
- provisioning, the demo's own reads and a data scientist calling the endpoint use the account.

Local AWS refuses whatever the synthesized policies do not allow.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_aws.iam.web_identity import mint
from mlops_constructs.ci_access import AUDIENCE

MWAA_SERVICE = "airflow-env.amazonaws.com"
LAMBDA_SERVICE = "lambda.amazonaws.com"


@dataclass(frozen=True)
class CiIdentity:
    """What GitLab puts in a CI job's ID token (the claims AWS checks)."""

    gitlab_url: str
    mlops_project_path: str

    def token(self, ref: str, *, lifetime_seconds: int = 300) -> str:
        """GitLab's ID token of a job on ``ref`` (it expires with the job: ``lifetime_seconds``)."""
        issuer = self.gitlab_url.rstrip("/")
        return mint(
            {
                "iss": issuer,
                "aud": AUDIENCE,
                "sub": f"project_path:{self.mlops_project_path}:ref_type:branch:ref:{ref}",
                "project_path": self.mlops_project_path,
                "ref": ref,
                "ref_type": "branch",
                "ref_protected": "true",
            },
            lifetime_seconds=lifetime_seconds,
        )


class Identities:
    def __init__(self, aws: Any, *, account: str, region: str) -> None:
        self.aws = aws
        self.account = account
        self.region = region

    def service_role(self, role_arn: str, service: str, source_arn: str | None = None) -> dict[str, str]:
        return self.aws.service_credentials(role_arn, service, source_arn=source_arn)

    def mwaa_tasks(self, role_arn: str, environment_name: str) -> dict[str, str]:
        source = f"arn:aws:airflow:{self.region}:{self.account}:environment/{environment_name}"
        return self.service_role(role_arn, MWAA_SERVICE, source)

    def trigger_lambda(self, role_arn: str, function_name: str) -> dict[str, str]:
        source = f"arn:aws:lambda:{self.region}:{self.account}:function:{function_name}"
        return self.service_role(role_arn, LAMBDA_SERVICE, source)

    def ci(self, role_arn: str, ci: CiIdentity, ref: str) -> dict[str, str]:
        """``aws sts assume-role-with-web-identity`` as a CI job does it (unsigned, token only)."""
        import boto3
        from botocore import UNSIGNED
        from botocore.config import Config

        sts = boto3.client(
            "sts", endpoint_url=self.aws.url, region_name=self.region, config=Config(signature_version=UNSIGNED)
        )
        response = sts.assume_role_with_web_identity(
            RoleArn=role_arn, RoleSessionName="gitlab-ci", WebIdentityToken=ci.token(ref)
        )
        return response["Credentials"]


def credentials_env(credentials: dict[str, str]) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
    }


def write_credentials_file(path: Path, credentials: dict[str, str]) -> None:
    """A shared credentials file: how processes started before the credentials existed (Airflow
    starts while the platform is provisioned) get them, as instance credentials reach MWAA's
    workers. boto3 reads it each time a task creates a session."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(
        "[default]\n"
        f"aws_access_key_id = {credentials['AccessKeyId']}\n"
        f"aws_secret_access_key = {credentials['SecretAccessKey']}\n"
        f"aws_session_token = {credentials['SessionToken']}\n"
    )
    tmp.chmod(0o600)
    tmp.replace(path)
