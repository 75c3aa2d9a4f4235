"""HTTP plumbing shared by the local services: AWS-shaped JSON responses and errors."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from typing import Any

from werkzeug.wrappers import Request, Response

DEFAULT_REGION = "us-east-1"
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request")


class AwsError(Exception):
    """An error returned to the client in AWS's shape; botocore raises ClientError(code)."""

    def __init__(self, code: str, message: str, status: int = 400, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.extra = extra


def signing_scope(request: Request) -> tuple[str | None, str | None]:
    """(region, service) from the SigV4 Authorization header, or (None, None) if unsigned."""
    match = _SCOPE.search(request.headers.get("Authorization", ""))
    if not match:
        return None, None
    return match.group("region"), match.group("service")


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def json_response(body: Any, status: int = 200, content_type: str = "application/x-amz-json-1.1") -> Response:
    return Response(json.dumps(body, default=_default), status=status, content_type=content_type)


def error_response(error: AwsError, content_type: str = "application/x-amz-json-1.1") -> Response:
    # JSON protocols: botocore reads the code from "__type" (and x-amzn-ErrorType for rest-json).
    body = {"__type": error.code, "message": error.message, "Message": error.message, **error.extra}
    response = json_response(body, status=error.status, content_type=content_type)
    response.headers["x-amzn-ErrorType"] = error.code
    return response
