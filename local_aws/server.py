"""The local AWS process: one WSGI app in front of moto server.

Every other request is first authorized against the account's IAM and resource policies
(``local_aws.iam``) unless enforcement is off; a denied request gets AWS's error and goes no further.

Routing, first match wins:
- ``/_local_aws/*``: control API (health, scenario, events, authorization log, service credentials);
- ``X-Amz-Target: SageMaker.<Op>`` for an operation the local SageMaker implements: ours
  (other SageMaker operations fall through to moto, with moto's own separate state);
- ``POST /endpoints/<name>/invocations`` not signed for S3: runtime InvokeEndpoint when signed for
  ``sagemaker`` (the runtime's signing name), else AWS's authentication error (curl without
  ``--aws-sigv4`` used to fall through to moto, which answered 500);
- requests signed for ``airflow`` (MWAA): ``InvokeRestApi`` forwarding;
- ``/lambda-url/<id>/`` (function URLs) and Lambda's Invoke and GetFunctionUrlConfig: local Lambda
  (``local_aws.lambda_service``), which runs the registered functions;
- everything else: moto's own dispatcher, unchanged.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sys
import threading
from importlib.metadata import version
from pathlib import Path
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from local_aws import sns_delivery
from local_aws.alarm_actions import alarm_state, run_alarm_actions
from local_aws.alarm_evaluation import evaluate_after_put, metric_data_count
from local_aws.iam.calls import read_body
from local_aws.iam.enforcer import AccessDenied, LocalIam
from local_aws.iam.principals import Sessions, UnknownAccessKey, access_key_of, issue_session
from local_aws.lambda_service import LambdaService
from local_aws.mwaa import INVOKE_PATH, MwaaForwarder
from local_aws.sagemaker.core import EventLog
from local_aws.sagemaker.runners import SimulatedEndpointRunner, SimulatedJobRunner, load_runner
from local_aws.sagemaker.service import SageMakerService
from local_aws.scenario import Scenario, ScenarioError
from local_aws.wire import DEFAULT_REGION, AwsError, error_response, json_response, signing_scope

log = logging.getLogger("local_aws")
ACCOUNT = "123456789012"  # moto's default account, the one every local resource lives in
RUNTIME_PATH = re.compile(r"^/endpoints/(?P<name>[^/]+)/invocations$")


def _is_put_metric_data(request: Request, environ: dict[str, Any]) -> bool:
    """CloudWatch's PutMetricData in the JSON protocol (X-Amz-Target) or the query protocol
    (Action in the form body), which older botocore versions (Airflow 2.11's) still send."""
    if request.headers.get("X-Amz-Target", "").endswith(".PutMetricData"):
        return True
    if request.method != "POST" or "x-www-form-urlencoded" not in request.headers.get("Content-Type", ""):
        return False
    return b"Action=PutMetricData" in read_body(environ)


class LocalAwsApp:
    def __init__(
        self,
        *,
        sagemaker: SageMakerService,
        scenario: Scenario,
        events: EventLog,
        initial_scenario: dict[str, Any] | None = None,
        iam: LocalIam | None = None,
        lambda_service: LambdaService | None = None,
    ) -> None:
        self.sagemaker = sagemaker
        self.iam = iam
        # Who signed a request, with or without enforcement (the function URL's caller identity).
        self.sessions = iam.sessions if iam is not None else Sessions(ACCOUNT)
        self.lambda_service = lambda_service
        self.scenario = scenario
        self.initial_scenario = initial_scenario or {}
        self.events = events
        self.mwaa = MwaaForwarder(scenario)
        self.moto = DomainDispatcherApplication(create_backend_app)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if self.iam is not None and not path.startswith("/_local_aws/"):
            denied = self.iam.authorize_environ(environ, DEFAULT_REGION)
            if denied is not None:
                return denied(environ, start_response)
        request = Request(environ)  # reading headers only: the body stays unread for moto
        response = None
        if path.startswith("/_local_aws/"):
            response = self.control(request, path)
        else:
            region, service = signing_scope(request)
            region = region or DEFAULT_REGION
            target = request.headers.get("X-Amz-Target", "")
            if target.startswith("SageMaker."):
                operation = target.split(".", 1)[1]
                if self.sagemaker.implements(operation):
                    response = self._aws(
                        lambda: json_response(self.sagemaker.call(operation, region, request.get_data()))
                    )
                else:
                    log.warning("SageMaker.%s is not implemented locally: served by moto (separate state)", operation)
            elif self.lambda_service is not None and (
                (service == "lambda" or path.startswith("/lambda-url/"))
                and self.lambda_service.handles(request.method, path)
            ):
                response = self._lambda(request, path, region, service == "lambda")
            elif service != "s3" and request.method == "POST" and RUNTIME_PATH.match(path):
                response = self._runtime(request, region, service, RUNTIME_PATH.match(path).group("name"))
            elif service == "airflow":
                match = INVOKE_PATH.match(path)
                if match and request.method == "POST":
                    name = match.group("name")
                    response = self._aws(
                        lambda: json_response(
                            self.mwaa.invoke_rest_api(name, request.get_data()),
                            content_type="application/json",
                        ),
                        content_type="application/json",
                    )
                else:
                    response = error_response(
                        AwsError(
                            "ValidationException",
                            f"local MWAA implements only InvokeRestApi, not {request.method} {path}",
                        ),
                        content_type="application/json",
                    )
        if response is None:
            if request.headers.get("X-Amz-Target", "").endswith(".SetAlarmState"):
                return self._set_alarm_state(environ, start_response, region)
            if _is_put_metric_data(request, environ):
                return self._put_metric_data(environ, start_response, region)
            return self.moto(environ, start_response)
        return response(environ, start_response)

    def _set_alarm_state(self, environ: dict[str, Any], start_response: Any, region: str) -> Any:
        """moto changes the alarm's state; the actions that change triggers run here."""
        name = json.loads(read_body(environ) or b"{}").get("AlarmName", "")
        old_state = alarm_state(ACCOUNT, region, name)
        result = self.moto(environ, start_response)
        run_alarm_actions(
            account=ACCOUNT, region=region, name=name, old_state=old_state, iam=self.iam, events=self.events
        )
        return result

    def _put_metric_data(self, environ: dict[str, Any], start_response: Any, region: str) -> Any:
        """moto stores the data; the alarms on the metrics written are evaluated here."""
        since = metric_data_count(ACCOUNT, region)
        result = self.moto(environ, start_response)
        try:
            evaluate_after_put(account=ACCOUNT, region=region, since=since, iam=self.iam, events=self.events)
        except Exception:  # noqa: BLE001 - an evaluation bug must not fail the caller's PutMetricData
            log.exception("alarm evaluation after PutMetricData failed")
        return result

    @staticmethod
    def _aws(produce: Any, content_type: str = "application/x-amz-json-1.1") -> Response:
        try:
            return produce()
        except AwsError as error:
            return error_response(error, content_type=content_type)

    @staticmethod
    def _passthrough(produce: Any) -> Response:
        """A service's own (status, body, headers) answer, or its AwsError in AWS's JSON shape."""
        try:
            status, body, headers = produce()
        except AwsError as error:
            return error_response(error, content_type="application/json")
        response = Response(body, status=status)
        for key, value in headers.items():
            response.headers[key] = value
        return response

    def _runtime(self, request: Request, region: str, service: str | None, name: str) -> Response:
        # InvokeEndpoint is authenticated with SigV4 only; AWS's common errors for an unsigned
        # request and for a signature scoped to another service.
        if service is None:
            return error_response(
                AwsError(
                    "MissingAuthenticationToken",
                    "The request must contain either a valid (registered) AWS access key ID or X.509 certificate.",
                    status=403,
                ),
                content_type="application/json",
            )
        if service != "sagemaker":
            return error_response(
                AwsError(
                    "InvalidSignatureException",
                    "Credential should be scoped to correct service: 'sagemaker'.",
                    status=403,
                ),
                content_type="application/json",
            )
        return self._passthrough(
            lambda: self.sagemaker.invoke_endpoint(region, name, request.get_data(), dict(request.headers))
        )

    def _lambda(self, request: Request, path: str, region: str, signed: bool) -> Response:
        caller = self._caller(request) if signed else None
        query = request.query_string.decode()
        return self._passthrough(
            lambda: self.lambda_service.call(
                request.method, path, query, request.get_data(), dict(request.headers), caller, region
            )
        )

    def _caller(self, request: Request) -> dict[str, str] | None:
        """Who signed the request, as a function URL's requestContext.authorizer.iam names them."""
        key = access_key_of(request.headers.get("Authorization"), dict(request.args))
        try:
            principal = self.sessions.resolve(key)
        except UnknownAccessKey:
            return None
        session = principal.arn.rsplit("/", 1)[-1] if principal.kind == "role" else ""
        caller_id = (
            f"AROA{abs(hash(principal.role_arn or principal.arn)) % 10**16:016d}:{session}" if session else ACCOUNT
        )
        return {"arn": principal.arn, "account": principal.account, "access_key": key or "", "caller_id": caller_id}

    def _service_credentials(self, request: Request) -> Response:
        """Credentials of a role as a service gets them (MWAA for its tasks, Lambda for a function):
        the role's trust policy must allow that service. Local mode plays those services."""
        body = json.loads(request.get_data() or b"{}")
        if self.iam is None:  # the same sessions, without the trust policy's say
            name = body.get("session_name") or body["service"].split(".")[0]
            return json_response(issue_session(ACCOUNT, body["role_arn"], name), content_type="application/json")
        try:
            credentials = self.iam.assume_as_service(
                body["role_arn"],
                body["service"],
                source_arn=body.get("source_arn"),
                session_name=body.get("session_name"),
            )
        except AccessDenied as denied:
            return json_response({"error": str(denied)}, status=403, content_type="application/json")
        except KeyError as missing:
            return json_response({"error": f"missing {missing}"}, status=400, content_type="application/json")
        return json_response(credentials, content_type="application/json")

    def control(self, request: Request, path: str) -> Response:
        if path == "/_local_aws/health":
            return json_response({"status": "ok", "moto": version("moto")}, content_type="application/json")
        if path == "/_local_aws/reset" and request.method == "POST":
            # Everything back to a fresh server: SageMaker state, events, scenario, and moto's backends.
            from moto.moto_api._internal.models import moto_api_backend

            self.sagemaker.reset()
            if self.lambda_service is not None:
                self.lambda_service.reset()
            self.events.clear()
            if self.iam is not None:
                self.iam.decisions.clear()
            self.scenario.replace(self.initial_scenario)
            moto_api_backend.reset()
            return json_response({"status": "reset"}, content_type="application/json")
        if path == "/_local_aws/events":
            return json_response(self.events.all(), content_type="application/json")
        if path == "/_local_aws/authorization":
            if self.iam is None:
                return json_response({"enforced": False}, content_type="application/json")
            if request.method == "DELETE":
                self.iam.decisions.clear()
            return json_response({"enforced": True, **self.iam.decisions.summary()}, content_type="application/json")
        if path == "/_local_aws/credentials" and request.method == "POST":
            return self._service_credentials(request)
        if path == "/_local_aws/lambda/functions" and request.method == "POST" and self.lambda_service is not None:
            spec = json.loads(request.get_data() or b"{}")
            try:
                described = self.lambda_service.register(spec, spec.get("region", DEFAULT_REGION))
            except (KeyError, TypeError) as missing:
                return json_response(
                    {"error": f"bad function spec: {missing!r}"}, status=400, content_type="application/json"
                )
            return json_response(described, content_type="application/json")
        if path == "/_local_aws/scenario":
            try:
                if request.method == "GET":
                    return json_response(self.scenario.snapshot(), content_type="application/json")
                patch = json.loads(request.get_data() or b"{}")
                if request.method == "PUT":
                    return json_response(self.scenario.replace(patch), content_type="application/json")
                if request.method == "PATCH":
                    return json_response(self.scenario.update(patch), content_type="application/json")
            except (ScenarioError, ValueError) as exc:
                return json_response({"error": str(exc)}, status=400, content_type="application/json")
            return json_response(
                {"error": f"method {request.method} not allowed"}, status=405, content_type="application/json"
            )
        return json_response({"error": f"unknown control path {path}"}, status=404, content_type="application/json")


def _bucket_policies_evaluated_by_local_iam() -> None:
    """moto applies a bucket policy's Deny statements while ignoring their conditions, so the
    SSL-only policy every bucket of the platform has ("Deny s3:* if aws:SecureTransport is false")
    refuses every upload. local_aws.iam evaluates bucket policies with their conditions instead
    (or nothing does, with enforcement off, as before bucket policies were provisioned)."""
    from moto.iam.access_control import PermissionResult
    from moto.s3.models import FakeBucket

    FakeBucket.get_permission = lambda self, action, resource: PermissionResult.NEUTRAL


def serve(
    *,
    host: str,
    port: int,
    state_dir: Path,
    scenario_patch: dict[str, Any],
    job_runner: str | None = None,
    endpoint_runner: str | None = None,
    url_file: Path | None = None,
    enforce_iam: bool = True,
) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    _bucket_policies_evaluated_by_local_iam()
    scenario = Scenario(scenario_patch)
    events = EventLog()
    sagemaker = SageMakerService(
        scenario=scenario,
        events=events,
        job_runner=load_runner(job_runner, SimulatedJobRunner),
        endpoint_runner=load_runner(endpoint_runner, SimulatedEndpointRunner),
        state_dir=state_dir,
    )
    iam = LocalIam(account=ACCOUNT, sagemaker=sagemaker) if enforce_iam else None
    sagemaker.iam = iam
    lambda_service = LambdaService(account=ACCOUNT, state_dir=state_dir, iam=iam)
    if iam is not None:
        iam.state.lambda_service = lambda_service
    sns_delivery.install(lambda_service, iam, events, scenario)
    app = LocalAwsApp(
        sagemaker=sagemaker,
        scenario=scenario,
        events=events,
        initial_scenario=scenario_patch,
        iam=iam,
        lambda_service=lambda_service,
    )
    server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
    url = f"http://{host}:{server.server_port}"
    sagemaker.base_url = url
    lambda_service.base_url = url
    os.environ.setdefault("MOTO_PORT", str(server.server_port))
    for target in filter(None, (state_dir / "url", url_file)):
        tmp = Path(f"{target}.tmp")
        tmp.write_text(url)
        tmp.replace(target)  # atomic: a launcher polling the file never reads half a URL

    stopping = threading.Event()

    def drain_then_stop() -> None:
        # The last captured invocations are written through this server (as the model's role),
        # so it keeps answering until they are.
        try:
            sagemaker.close_captures()
        finally:
            server.shutdown()

    def stop(signum: int, frame: Any) -> None:
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=drain_then_stop, name="drain-then-stop", daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    print(f"LOCAL_AWS_URL={url}", flush=True)
    log.info("local AWS listening on %s (state in %s)", url, state_dir)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        # A second SIGTERM or Ctrl-C must not cut the shutdown short (a Python handler, not SIG_IGN,
        # which processes started meanwhile would inherit).
        signal.signal(signal.SIGTERM, lambda *_: None)
        signal.signal(signal.SIGINT, lambda *_: None)
        sagemaker.shutdown()
        lambda_service.shutdown()
        if iam is not None:
            iam.close()
        server.server_close()
        log.info("local AWS stopped")
        sys.stderr.flush()
