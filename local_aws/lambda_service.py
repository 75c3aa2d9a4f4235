"""Local Lambda: the functions local mode provisions from the CDK app, run for real.

What AWS Lambda does for the platform's trigger function (AWS Lambda Developer Guide, "Control
access to Lambda function URLs" and "Invoking Lambda function URLs"):
- a function URL belongs to a function or to one of its aliases (``Qualifier``); with auth type
  ``AWS_IAM`` a request must be SigV4-signed, and the caller needs ``lambda:InvokeFunctionUrl``
  (with ``lambda:FunctionUrlAuthType`` = ``AWS_IAM``) and, since October 2025,
  ``lambda:InvokeFunction`` on that function or alias, from its identity policy or the function's
  resource policy. The authorization itself is local AWS's (``local_aws.iam``, rule in
  ``actions.py``): it happens before this service sees the request;
- the function then receives the payload format 2.0 event, whose
  ``requestContext.authorizer.iam`` names the signed caller (``userArn``, ``accountId``,
  ``accessKey``, ``callerId``), and ``context.invoked_function_arn`` is qualified with the alias;
- its answer ``{"statusCode", "headers", "body"}`` becomes the HTTP response;
- ``Invoke`` (the API) runs the function or alias named by ``FunctionName``/``Qualifier``;
  ``GetFunctionUrlConfig`` returns a function's or alias's URL.

Each function runs in its own warm process (``local_aws.lambda_runtime``) with its environment
variables and its role's credentials, obtained as ``lambda.amazonaws.com`` under the role's trust
policy. Local URLs are ``<local AWS>/lambda-url/<url id>/``.

Registered through the control API (``POST /_local_aws/lambda/functions``), not CreateFunction:
local mode runs the source folder the CDK asset is built from, not a zip.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

from local_aws.wire import AwsError

URL_PATH = re.compile(r"^/lambda-url/(?P<url_id>[a-z0-9]+)/?(?P<rest>.*)$")
_INVOKE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations$")
_URL_CONFIG = re.compile(r"^/2021-10-31/functions/(?P<name>[^/]+)/url$")
LAMBDA_SERVICE = "lambda.amazonaws.com"


@dataclass
class Function:
    name: str
    arn: str
    handler: str
    code_dirs: list[str]
    role_arn: str
    environment: dict[str, str]
    timeout_seconds: float = 60.0
    aliases: set[str] = field(default_factory=set)
    urls: dict[str, dict[str, str]] = field(default_factory=dict)  # qualifier ("" = none) -> {url_id, auth_type}
    policy: dict[str, Any] | None = None  # the resource-based policy (AWS::Lambda::Permission)


class LambdaService:
    def __init__(self, *, account: str, state_dir: Path, iam: Any = None) -> None:
        self.account = account
        self.log_dir = state_dir / "lambda"
        self.iam = iam
        self.base_url = ""
        self.functions: dict[str, Function] = {}
        self._workers: dict[str, tuple[subprocess.Popen[str], threading.Lock]] = {}
        self._lock = threading.Lock()

    # -- registry ----------------------------------------------------------------------------------
    def register(self, spec: dict[str, Any], region: str) -> dict[str, Any]:
        name = spec["name"]
        arn = f"arn:aws:lambda:{region}:{self.account}:function:{name}"
        function = Function(
            name=name,
            arn=arn,
            handler=spec["handler"],
            code_dirs=list(spec["code_dirs"]),
            role_arn=spec["role_arn"],
            environment={k: str(v) for k, v in spec.get("environment", {}).items()},
            timeout_seconds=float(spec.get("timeout_seconds", 60)),
            aliases=set(spec.get("aliases", [])),
            policy=spec.get("policy"),
        )
        known = self.functions.get(name)
        for url in spec.get("urls", []):
            qualifier = url.get("qualifier") or ""
            previous = known.urls.get(qualifier) if known is not None else None  # a URL keeps its id
            url_id = previous["url_id"] if previous else uuid.uuid4().hex[:32]
            function.urls[qualifier] = {"url_id": url_id, "auth_type": url["auth_type"]}
        with self._lock:
            self._stop_worker(name)
            self.functions[name] = function
        return self.describe(function)

    def describe(self, function: Function) -> dict[str, Any]:
        return {
            "FunctionName": function.name,
            "FunctionArn": function.arn,
            "Aliases": sorted(function.aliases),
            "Urls": {q or "$LATEST": self._url(u["url_id"]) for q, u in function.urls.items()},
        }

    def _url(self, url_id: str) -> str:
        return f"{self.base_url}/lambda-url/{url_id}/"

    def _function(self, name_or_arn: str) -> tuple[Function, str]:
        """(function, qualifier) of a FunctionName that may be a name, name:qualifier or an ARN."""
        text = unquote(name_or_arn)
        parts = text.split(":")
        if text.startswith("arn:"):
            name, qualifier = parts[6], (parts[7] if len(parts) > 7 else "")
        else:
            name, qualifier = parts[0], (parts[1] if len(parts) > 1 else "")
        function = self.functions.get(name)
        if function is None:
            raise AwsError("ResourceNotFoundException", f"Function not found: {self._arn(name, qualifier)}", 404)
        if qualifier and qualifier != "$LATEST" and qualifier not in function.aliases:
            raise AwsError("ResourceNotFoundException", f"Function not found: {self._arn(name, qualifier)}", 404)
        return function, qualifier

    def _arn(self, name: str, qualifier: str, region: str = "us-east-1") -> str:
        return f"arn:aws:lambda:{region}:{self.account}:function:{name}" + (f":{qualifier}" if qualifier else "")

    # -- what local IAM needs ----------------------------------------------------------------------------
    def url_target(self, url_id: str) -> tuple[str, str, str] | None:
        """(function ARN with qualifier, auth type, function name) of a URL id."""
        for function in self.functions.values():
            for qualifier, url in function.urls.items():
                if url["url_id"] == url_id:
                    arn = function.arn + (f":{qualifier}" if qualifier else "")
                    return arn, url["auth_type"], function.name
        return None

    def policy(self, function_arn: str) -> dict[str, Any] | None:
        name = function_arn.split(":")[6] if function_arn.startswith("arn:") else function_arn
        function = self.functions.get(name)
        return function.policy if function is not None else None

    # -- API ----------------------------------------------------------------------------------------------
    def handles(self, method: str, path: str) -> bool:
        return bool(
            URL_PATH.match(path)
            or (method == "POST" and _INVOKE.match(path))
            or (method == "GET" and _URL_CONFIG.match(path))
        )

    def call(self, method: str, path: str, query: str, body: bytes, headers: dict[str, str], caller: Any, region: str):
        """(status, body bytes, headers) for an API call or a function URL request."""
        url = URL_PATH.match(path)
        if url:
            return self._url_request(url["url_id"], "/" + url["rest"], method, query, body, headers, caller)
        params = {k: v[0] for k, v in parse_qs(query).items()}
        match = _URL_CONFIG.match(path)
        if match:
            function, qualifier = self._function(match["name"])
            qualifier = params.get("Qualifier", qualifier)
            config = function.urls.get(qualifier or "")
            if config is None:
                raise AwsError(
                    "ResourceNotFoundException", f"The resource you requested does not exist. ({function.name})", 404
                )
            document = {
                "FunctionUrl": self._url(config["url_id"]),
                "FunctionArn": function.arn + (f":{qualifier}" if qualifier else ""),
                "AuthType": config["auth_type"],
                "InvokeMode": "BUFFERED",
                "CreationTime": "2026-01-01T00:00:00.000+0000",
                "LastModifiedTime": "2026-01-01T00:00:00.000+0000",
            }
            return 200, json.dumps(document).encode(), {"Content-Type": "application/json"}
        match = _INVOKE.match(path)
        function, qualifier = self._function(match["name"])
        qualifier = params.get("Qualifier", qualifier)
        event = json.loads(body or b"null")
        answer = self.run(function, qualifier, event)
        response_headers = {"Content-Type": "application/json", "X-Amz-Executed-Version": "1"}
        if not answer["ok"]:
            response_headers["X-Amz-Function-Error"] = "Unhandled"
            payload = {"errorType": answer["errorType"], "errorMessage": answer["errorMessage"]}
            return 200, json.dumps(payload).encode(), response_headers
        return 200, json.dumps(answer["payload"]).encode(), response_headers

    def _url_request(self, url_id, raw_path, method, query, body, headers, caller):
        target = self.url_target(url_id)
        if target is None:
            return 404, b'{"Message":"Not Found"}', {"Content-Type": "application/json"}
        arn, auth_type, name = target
        if auth_type == "AWS_IAM" and caller is None:
            return 403, b'{"Message":"Forbidden"}', {"Content-Type": "application/json"}
        function = self.functions[name]
        qualifier = arn.split(":")[7] if arn.count(":") == 7 else ""
        now = time.time()
        iam_identity = None
        if caller is not None:
            iam_identity = {
                "accessKey": caller["access_key"],
                "accountId": caller["account"],
                "callerId": caller["caller_id"],
                "cognitoIdentity": None,
                "principalOrgId": None,
                "userArn": caller["arn"],
                "userId": caller["caller_id"],
            }
        text = body.decode("utf-8", "replace")
        event = {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": raw_path,
            "rawQueryString": query,
            "headers": {k.lower(): v for k, v in headers.items()},
            "requestContext": {
                "accountId": "anonymous" if caller is None else caller["account"],
                "apiId": url_id,
                "authorizer": {"iam": iam_identity} if iam_identity else None,
                "domainName": f"{url_id}.lambda-url.local",
                "domainPrefix": url_id,
                "http": {
                    "method": method,
                    "path": raw_path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": "127.0.0.1",
                    "userAgent": headers.get("User-Agent", ""),
                },
                "requestId": str(uuid.uuid4()),
                "routeKey": "$default",
                "stage": "$default",
                "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                "timeEpoch": int(now * 1000),
            },
            "body": text,
            "isBase64Encoded": False,
        }
        answer = self.run(function, qualifier, event)
        if not answer["ok"]:
            return 502, b'{"Message":"Internal Server Error"}', {"Content-Type": "application/json"}
        payload = answer["payload"]
        if isinstance(payload, dict) and "statusCode" in payload:
            response_headers = {str(k): str(v) for k, v in (payload.get("headers") or {}).items()}
            data = payload.get("body") or ""
            return int(payload["statusCode"]), data.encode() if isinstance(data, str) else data, response_headers
        return 200, json.dumps(payload).encode(), {"Content-Type": "application/json"}

    # -- running functions ------------------------------------------------------------------------
    def run(self, function: Function, qualifier: str, event: Any) -> dict[str, Any]:
        process, lock = self._worker(function)
        request = {
            "event": event,
            "context": {
                "function_name": function.name,
                "invoked_function_arn": function.arn + (f":{qualifier}" if qualifier else ""),
                "aws_request_id": str(uuid.uuid4()),
                "timeout_seconds": function.timeout_seconds,
            },
        }
        with lock:
            assert process.stdin and process.stdout
            process.stdin.write(json.dumps(request) + "\n")
            process.stdin.flush()
            line = process.stdout.readline()
        if not line:
            with self._lock:
                self._stop_worker(function.name)
            return {"ok": False, "errorType": "Runtime.ExitError", "errorMessage": "the function's process exited"}
        return json.loads(line)

    def _worker(self, function: Function) -> tuple[subprocess.Popen[str], threading.Lock]:
        with self._lock:
            worker = self._workers.get(function.name)
            if worker is not None and worker[0].poll() is None:
                return worker
            credentials = {"AccessKeyId": "testing", "SecretAccessKey": "testing", "SessionToken": "testing"}
            if self.iam is not None:
                credentials = self.iam.assume_as_service(
                    function.role_arn, LAMBDA_SERVICE, source_arn=function.arn, session_name=function.name
                )
            region = function.arn.split(":")[3]
            repo = str(Path(__file__).resolve().parents[1])
            env = {
                **{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR", "SSL_CERT_FILE")},
                **function.environment,
                "AWS_LAMBDA_FUNCTION_NAME": function.name,
                "AWS_REGION": region,
                "AWS_DEFAULT_REGION": region,
                "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
                "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
                "AWS_SESSION_TOKEN": credentials["SessionToken"],
                "AWS_ENDPOINT_URL": self.base_url,
                "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
                "PYTHONPATH": os.pathsep.join([*function.code_dirs, repo]),
            }
            self.log_dir.mkdir(parents=True, exist_ok=True)
            log = open(self.log_dir / f"{function.name}.log", "ab")  # noqa: SIM115 - owned by the process
            process = subprocess.Popen(  # noqa: S603 - the server's own Python and module
                [sys.executable, "-m", "local_aws.lambda_runtime", function.handler],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=env,
                cwd=function.code_dirs[0],
            )
            log.close()
            worker = (process, threading.Lock())
            self._workers[function.name] = worker
            return worker

    def _stop_worker(self, name: str) -> None:
        worker = self._workers.pop(name, None)
        if worker is None:
            return
        process = worker[0]
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def reset(self) -> None:
        with self._lock:
            for name in list(self._workers):
                self._stop_worker(name)
            self.functions.clear()

    shutdown = reset
