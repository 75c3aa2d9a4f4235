"""An HTTP request to local AWS as the API call it is: service, operation, parameters, region and
the access key that signed it. Operations and parameters come from botocore's service models
through moto's protocol routers and parsers, the same code that serves the request.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from werkzeug.wrappers import Request

from local_aws.iam.principals import access_key_of

# Signing names that differ from botocore's service names.
_SERVICE_OF_SIGNING_NAME = {"monitoring": "cloudwatch", "airflow": "mwaa", "email": "ses"}
_RUNTIME_PATH = re.compile(r"^/endpoints/[^/]+/invocations$")
_FUNCTION_URL_PATH = re.compile(r"^/lambda-url/(?P<url_id>[a-z0-9]+)/")
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request")


@dataclass
class ApiCall:
    service: str  # botocore's service name: s3, sns, sagemaker, sagemaker-runtime, mwaa, ...
    operation: str
    params: dict[str, Any] = field(default_factory=dict)
    region: str = "us-east-1"
    access_key: str | None = None
    signed: bool = True


def read_body(environ: dict[str, Any]) -> bytes:
    """Read the request body once and put it back, so the service behind still reads it."""
    body = Request(environ).get_data(cache=False)
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def signing(environ: dict[str, Any]) -> tuple[str | None, str | None]:
    """(region, signing service) of a SigV4 header or presigned URL."""
    match = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if match:
        return match.group("region"), match.group("service")
    credential = parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Credential")
    if credential:
        parts = credential[0].split("/")
        if len(parts) >= 4:
            return parts[2], parts[3]
    return None, None


def parse(environ: dict[str, Any], body: bytes, default_region: str) -> ApiCall | None:
    """The API call a request makes, or None when it is not an AWS API call we can name."""
    from moto.core.parse import PROTOCOL_PARSERS
    from moto.core.request import Request as MotoRequest
    from moto.core.request import determine_request_protocol
    from moto.core.routing import get_service_router
    from moto.core.utils import get_service_model

    region, signing_name = signing(environ)
    environ_copy = {**environ, "wsgi.input": io.BytesIO(body)}
    request = MotoRequest(environ_copy)
    query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    access_key = access_key_of(environ.get("HTTP_AUTHORIZATION"), query)
    if signing_name is None:
        # Unsigned: only STS's web-identity and SAML calls are unsigned by design.
        form = parse_qs(body.decode(errors="replace")) if body else {}
        action = (form.get("Action") or [query.get("Action")])[0]
        if action in ("AssumeRoleWithWebIdentity", "AssumeRoleWithSAML"):
            return ApiCall("sts", action, {k: v[0] for k, v in form.items()}, default_region, None, signed=False)
        return None
    service = _SERVICE_OF_SIGNING_NAME.get(signing_name, signing_name)
    url = _FUNCTION_URL_PATH.match(environ.get("PATH_INFO", ""))
    if service == "lambda" and url:  # a function URL request, signed for lambda (local_aws.lambda_service)
        return ApiCall("lambda", "InvokeFunctionUrl", {"UrlId": url["url_id"]}, region or default_region, access_key)
    if service == "sagemaker" and _RUNTIME_PATH.match(environ.get("PATH_INFO", "")):
        service = "sagemaker-runtime"
    try:
        service_model = get_service_model(service)
        operation, uri_params = get_service_router(service).match(request)
    except Exception:  # noqa: BLE001 - unknown service (UnknownServiceError) or path (NotFound): not an API we name
        return None
    params: dict[str, Any] = dict(uri_params)
    try:
        protocol = determine_request_protocol(service_model, request.content_type)
        parser = PROTOCOL_PARSERS[protocol](operation)
        parsed = parser.parse(
            {
                "method": request.method,
                "values": request.values,
                "headers": request.headers,
                "body": body,
                "url_path": request.path,
                "url_params": uri_params,
            }
        )
        params.update(_plain(parsed))
    except Exception:  # noqa: BLE001, S110 - the identifiers in the path are enough for S3 uploads
        pass
    return ApiCall(service, operation.name, params, region or default_region, access_key)


def _plain(value: Any) -> Any:
    if hasattr(value, "original_dict"):
        value = value.original_dict()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
