"""SageMaker acting as a job's or a model's execution role, as AWS does it.

When IAM policies are enforced (``self.iam``, see local_aws.iam), SageMaker
- assumes the role as ``sagemaker.amazonaws.com`` when the job or model is created, with the
  confused-deputy context AWS sets (aws:SourceAccount, aws:SourceArn = the job or model ARN); a
  trust policy that does not allow it fails the create call as AWS does;
- pulls the image from ECR and creates a grant on the volume's KMS key with that session, before
  the container starts (a refused call fails the job with the reason);
- gives runners clients with that session, so channel downloads, log streams, model artifacts and
  outputs are read and written as the role, through the same authorization as any caller.

Without enforcement every call uses the account's root credentials, as before.
"""

from __future__ import annotations

from typing import Any

from local_aws.sagemaker.core import ServiceCore
from local_aws.sagemaker.runners import RunnerFailure
from local_aws.wire import AwsError

SERVICE_PRINCIPAL = "sagemaker.amazonaws.com"
# What SageMaker asks of a volume key (the grant it creates for the instance's EBS volume).
VOLUME_GRANT_OPERATIONS = ["Encrypt", "Decrypt", "ReEncryptFrom", "ReEncryptTo", "GenerateDataKeyWithoutPlaintext"]


class ExecutionRoles(ServiceCore):
    def assume_execution_role(self, role_arn: str, source_arn: str) -> dict[str, str] | None:
        """Credentials of the role's session SageMaker holds, or None when policies are not enforced."""
        if self.iam is None:
            return None
        from local_aws.iam.enforcer import AccessDenied

        try:
            return self.iam.assume_as_service(
                role_arn, SERVICE_PRINCIPAL, source_arn=source_arn, session_name="SageMaker", hold=True
            )
        except AccessDenied as denied:
            raise AwsError(
                "ValidationException",
                f"Could not assume role {role_arn}. Please ensure that the role exists and allows principal "
                f"'{SERVICE_PRINCIPAL}' to assume the role. ({denied})",
            ) from denied

    def refused_as_role(
        self, region: str, credentials: dict[str, str] | None, service: str, operation: str, params: dict[str, Any]
    ) -> str | None:
        """Authorize a call SageMaker makes with the role's session: the denial message, or None."""
        if self.iam is None or credentials is None:
            return None
        from local_aws.iam.calls import ApiCall

        principal = self.iam.sessions.resolve(credentials["AccessKeyId"])
        decision = self.iam.authorize(
            principal, ApiCall(service, operation, params, region, credentials["AccessKeyId"])
        )
        return None if decision.allowed else decision.message

    def prepare_container(
        self, region: str, credentials: dict[str, str] | None, image: str, volume_key: str | None, what: str
    ) -> None:
        """The image pull and the volume-key grant SageMaker makes before the container starts."""
        repository = _repository_of(image)
        if repository:
            for operation in ("BatchGetImage", "GetDownloadUrlForLayer"):
                refused = self.refused_as_role(
                    region, credentials, "ecr", operation, {"repositoryName": repository, "imageIds": []}
                )
                if refused:
                    raise RunnerFailure(f"ClientError: Cannot pull image {image} for the {what}: {refused}")
        if volume_key:
            params = {"KeyId": volume_key, "GranteePrincipal": SERVICE_PRINCIPAL, "Operations": VOLUME_GRANT_OPERATIONS}
            refused = self.refused_as_role(region, credentials, "kms", "CreateGrant", params)
            if refused:
                raise RunnerFailure(
                    f"ClientError: Unable to create a grant on KMS key {volume_key} to encrypt the {what}'s "
                    f"storage volume: {refused}"
                )


def _repository_of(image: str) -> str | None:
    """``<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>`` -> ``<repository>``."""
    host, _, path = image.partition("/")
    if ".dkr.ecr." not in host or not path:
        return None
    return path.split("@")[0].rsplit(":", 1)[0] if ":" in path.split("/")[-1] or "@" in path else path
