"""What the policy evaluation needs to know about the account: the policies attached to a role
and the resource policies of buckets, topics, keys, repositories and functions, read from the moto
backends that hold them (this module runs inside the local AWS server).

The only place that reads moto's internals: moto is pinned (requirements/local-aws.txt), and
tests/local_aws/test_policy_enforcement.py fails if an attribute moves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

PARTITION = "aws"


def _document(value: Any) -> dict[str, Any] | None:
    if value in (None, "", b""):
        return None
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        value = json.loads(unquote(value) if value.lstrip().startswith("%") else value)
    return value


@dataclass(frozen=True)
class RolePolicies:
    arn: str
    identity: list[dict[str, Any]]  # [{"name", "policy"}]: inline and attached managed policies
    trust: dict[str, Any] | None
    boundary: dict[str, Any] | None


class AccountState:
    """Read-only view of one account's IAM and resource policies in moto."""

    def __init__(self, account: str) -> None:
        self.account = account

    # -- IAM -------------------------------------------------------------------------------------
    def _iam(self):
        from moto.iam.models import iam_backends

        return iam_backends[self.account][PARTITION]

    def role(self, role_arn: str) -> RolePolicies | None:
        name = role_arn.rsplit("/", 1)[-1]
        try:
            role = self._iam().get_role(name)
        except Exception:  # noqa: BLE001 - moto's NoSuchEntity: the role does not exist
            return None
        identity = [{"name": f"inline:{n}", "policy": _document(doc)} for n, doc in sorted(role.policies.items())]
        for arn, policy in sorted(role.managed_policies.items()):
            identity.append({"name": arn, "policy": _document(_default_version(policy))})
        boundary = None
        if role.permissions_boundary_arn:
            boundary_policy = self._iam().get_policy(role.permissions_boundary_arn)
            boundary = _document(_default_version(boundary_policy))
        return RolePolicies(
            arn=role.arn, identity=identity, trust=_document(role.assume_role_policy_document), boundary=boundary
        )

    def oidc_provider(self, url: str) -> dict[str, Any] | None:
        host = url.removeprefix("https://").rstrip("/")
        arn = f"arn:{PARTITION}:iam::{self.account}:oidc-provider/{host}"
        try:
            provider = self._iam().get_open_id_connect_provider(arn)
        except Exception:  # noqa: BLE001 - not registered
            return None
        return {"arn": arn, "client_ids": list(provider.client_id_list)}

    # -- resource policies ------------------------------------------------------------------------
    def bucket(self, name: str):
        from moto.s3.models import s3_backends

        return s3_backends[self.account][PARTITION].buckets.get(name)

    def bucket_policy(self, name: str) -> dict[str, Any] | None:
        bucket = self.bucket(name)
        return _document(bucket.policy) if bucket is not None else None

    def bucket_default_kms_key(self, name: str) -> str | None:
        bucket = self.bucket(name)
        if bucket is None or not bucket.encryption:
            return None
        default = bucket.encryption["Rule"]["ApplyServerSideEncryptionByDefault"]
        return default.get("KMSMasterKeyID") if default.get("SSEAlgorithm") == "aws:kms" else None

    def object_kms_key(self, bucket_name: str, key: str) -> str | None:
        bucket = self.bucket(bucket_name)
        if bucket is None:
            return None
        stored = bucket.keys.get(key)
        if stored is None:
            return None
        return stored.kms_key_id if getattr(stored, "encryption", None) == "aws:kms" else None

    def topic(self, arn: str):
        from moto.sns.models import sns_backends

        region = arn.split(":")[3]
        return sns_backends[self.account][region].topics.get(arn)

    def topic_policy(self, arn: str) -> dict[str, Any] | None:
        topic = self.topic(arn)
        return json.loads(topic.policy) if topic is not None else None

    def topic_kms_key(self, arn: str) -> str | None:
        topic = self.topic(arn)
        return (topic.kms_master_key_id or None) if topic is not None else None

    def kms_key(self, region: str, key_id: str) -> tuple[str, dict[str, Any] | None] | None:
        """(key ARN, key policy) for a key id, key ARN, alias name or alias ARN."""
        from moto.kms.models import kms_backends

        backend = kms_backends[self.account][region]
        try:
            key = backend.describe_key(key_id)
        except Exception:  # noqa: BLE001 - NotFound: the caller gets NotFoundException from moto
            return None
        if getattr(key, "key_manager", "CUSTOMER") == "AWS":
            return key.arn, None
        return key.arn, _document(key.policy)

    def kms_key_aliases(self, region: str, key_arn: str) -> list[str]:
        """The key's alias names (the kms:ResourceAliases condition key)."""
        from moto.kms.models import kms_backends

        key = kms_backends[self.account][region].keys.get(key_arn.rsplit("/", 1)[-1])
        return sorted(key.aliases) if key is not None else []

    def kms_key_is_aws_managed(self, region: str, key_id: str) -> bool:
        return key_id.startswith("alias/aws/") or ":alias/aws/" in key_id

    def repository_policy(self, region: str, name: str) -> dict[str, Any] | None:
        from moto.ecr.models import ecr_backends

        repository = ecr_backends[self.account][region].repositories.get(name)
        return _document(repository.policy) if repository is not None else None

    # Answered by local Lambda when the server wires it in (enforcer.ServerState).
    def lambda_url_target(self, url_id: str) -> tuple[str, str, str] | None:
        return None

    def function_policy(self, function_arn: str) -> dict[str, Any] | None:
        return None

    # Answered by the local SageMaker when the server wires it in (enforcer.ServerState).
    def endpoint_config_kms_key(self, region: str, name: str) -> str | None:
        return None

    def next_model_package_version(self, region: str, group: str) -> int:
        return 1

    def secret_arn(self, region: str, secret_id: str) -> str | None:
        from moto.secretsmanager.models import secretsmanager_backends

        secrets = secretsmanager_backends[self.account][region].secrets
        if secret_id in secrets:
            return secrets[secret_id].arn
        return None


def _default_version(policy) -> str:
    for version in policy.versions:
        if version.is_default:
            return version.document
    return policy.versions[-1].document if policy.versions else "{}"
