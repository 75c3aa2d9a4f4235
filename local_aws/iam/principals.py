"""Who makes a request: the principal behind the access key that signed it.

- The default key (``testing``, what ``LocalAws.env`` hands out) is the **account root**: the
  platform engineer deploying, test set-up, a data scientist reading results.
- Keys issued by STS (``AssumeRole``, ``AssumeRoleWithWebIdentity``, or a service assuming a role
  through :func:`LocalIam.assume_as_service`) are **role sessions**
  ``arn:aws:sts::<account>:assumed-role/<role>/<session>`` whose permissions are the role's policies.
- A session a service holds for its own calls (SageMaker pulling a job's image, writing its logs,
  creating a grant for its volume key) also records which service makes the calls, so conditions
  such as ``kms:ViaService`` and ``kms:GrantIsForAWSResource`` see what AWS would set.
- Any other key is refused as AWS refuses it (``InvalidClientTokenId``).

Signatures are not verified: local AWS trusts the access key id a request names (see README).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ROOT_ACCESS_KEYS = frozenset({"testing", "test", "FOOBARKEY"})
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


@dataclass(frozen=True)
class Principal:
    arn: str  # as AWS names the caller in an AccessDenied message
    account: str
    kind: str  # "root" | "role" | "service"
    role_arn: str | None = None
    via_service: str | None = None  # the AWS service making this session's calls, if any

    @property
    def is_root(self) -> bool:
        return self.kind == "root"

    @property
    def role_name(self) -> str | None:
        return self.role_arn.rsplit("/", 1)[-1] if self.role_arn else None


def root(account: str, partition: str = "aws") -> Principal:
    return Principal(arn=f"arn:{partition}:iam::{account}:root", account=account, kind="root")


def service(name: str, account: str) -> Principal:
    """An AWS service acting as itself (e.g. CloudWatch publishing an alarm to SNS)."""
    return Principal(arn=name, account=account, kind="service")


def access_key_of(authorization: str | None, query: dict[str, str] | None = None) -> str | None:
    """The access key id of a SigV4 Authorization header or presigned URL."""
    match = _CREDENTIAL.search(authorization or "")
    if match:
        return match.group(1)
    credential = (query or {}).get("X-Amz-Credential")
    return credential.split("/", 1)[0] if credential else None


class UnknownAccessKey(Exception):
    """The request names an access key no one was issued."""


class Sessions:
    """Access keys issued by the local STS, read from moto's STS backend (the one that issues them),
    plus which of them a service holds for its own calls."""

    def __init__(self, account: str) -> None:
        self.account = account
        self._via_service: dict[str, str] = {}

    def mark_service_session(self, access_key_id: str, service_name: str) -> None:
        self._via_service[access_key_id] = service_name

    def resolve(self, access_key_id: str | None) -> Principal:
        if access_key_id is None or access_key_id in ROOT_ACCESS_KEYS:
            return root(self.account)
        session = _assumed_role(access_key_id)
        if session is None:
            raise UnknownAccessKey(access_key_id)
        return Principal(
            arn=session.arn,
            account=session.account_id,
            kind="role",
            role_arn=session.role_arn,
            via_service=self._via_service.get(access_key_id),
        )


def issue_session(account: str, role_arn: str, session_name: str) -> dict[str, str]:
    """A role session from the local STS (moto's backend issues and remembers it), as a service's
    own AssumeRole gives it; whoever calls this has decided the trust policy allows it."""
    from moto.sts.models import sts_backends

    session = sts_backends[account]["aws"].assume_role(
        region_name="us-east-1",
        role_session_name=session_name[:64],
        role_arn=role_arn,
        policy="",
        duration=43200,
        external_id="",
    )
    return {
        "AccessKeyId": session.access_key_id,
        "SecretAccessKey": session.secret_access_key,
        "SessionToken": session.session_token,
    }


def _assumed_role(access_key_id: str):
    from moto.sts.models import sts_backends

    for account_id in list(sts_backends.keys()):
        for partition_backend in sts_backends[account_id].values():
            found = partition_backend.get_assumed_role_from_access_key(access_key_id)
            if found is not None:
                return found
    return None
