"""OpenID Connect ID tokens for ``AssumeRoleWithWebIdentity``: read the claims AWS evaluates, and
mint tokens with the claims a GitLab CI job's ``id_tokens`` carry, for local mode and the tests.

Local tokens are not signed (local AWS does not verify signatures, see the README); everything AWS
checks besides the signature is checked: issuer registered as an IAM OIDC provider, audience among
its client ids, expiry, and the trust policy's conditions on the claims.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any


class WebIdentityError(Exception):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(claims: dict[str, Any], *, lifetime_seconds: int = 300) -> str:
    now = int(time.time())
    body = {"iat": now, "nbf": now, "exp": now + lifetime_seconds, **claims}
    header = {"alg": "none", "typ": "JWT"}
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(body).encode())}."


def claims_of(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3:
        raise WebIdentityError("The ID token provided is not a valid JWT")
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError as exc:
        raise WebIdentityError("The ID token provided could not be decoded") from exc
    if not isinstance(claims, dict) or "iss" not in claims:
        raise WebIdentityError("The ID token provided has no issuer")
    if int(claims.get("exp", 0)) < time.time():
        raise WebIdentityError("Token is expired")
    return claims
