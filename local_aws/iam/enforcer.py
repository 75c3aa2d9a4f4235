"""Local AWS refuses what AWS would refuse: every request is authorized, before the service behind
it runs, against the policies the CDK app synthesized and local mode provisioned.

For each API call: who signed it (:mod:`principals`), which actions on which resources it needs
(:mod:`actions`), and for each of those the identity policies of the caller, the resource policy of
the resource and the request's context keys go through AWS's evaluation logic
(:mod:`policy_engine`). A denied call fails with AWS's error code and message, naming the principal,
the action and the resource. Services acting on their own (SageMaker assuming a job's role,
CloudWatch publishing an alarm) go through :meth:`LocalIam.assume_as_service` and
:meth:`LocalIam.authorize_service`.

What is not enforced (README "What local AWS enforces"): signatures, session policies, service and
resource control policies, VPC endpoint policies, and permissions inside Airflow (MWAA RBAC).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from werkzeug.wrappers import Response

from local_aws.iam import actions as rules
from local_aws.iam.calls import ApiCall, parse, read_body
from local_aws.iam.policy_engine import PolicyEngine, Verdict
from local_aws.iam.principals import Principal, Sessions, UnknownAccessKey, issue_session, service
from local_aws.iam.resources import AccountState

log = logging.getLogger("local_aws.iam")
ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
# Error code and HTTP status of a denied call, by service (each service's API reference).
_DENIED = {
    "s3": ("AccessDenied", 403),
    "sns": ("AuthorizationError", 403),
    "iam": ("AccessDenied", 403),
    "sts": ("AccessDenied", 403),
    "cloudwatch": ("AccessDenied", 403),
    "sqs": ("AccessDenied", 403),
    "sagemaker-runtime": ("AccessDeniedException", 403),
    "mwaa": ("AccessDeniedException", 403),
    "lambda": ("AccessDeniedException", 403),
}
_QUERY_PROTOCOL = {"sns", "iam", "sts"}
WEB_IDENTITY_CONDITION_CLAIMS = frozenset({"aud", "sub", "amr", "azp", "email", "oaud"})


@dataclass
class Decision:
    allowed: bool
    message: str = ""
    action: str = ""


@dataclass
class DecisionLog:
    """Every distinct (principal, action, resource) checked, and which were denied."""

    checks: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    unmapped: dict[str, int] = field(default_factory=dict)  # root calls with no rule (allowed)
    seconds: float = 0.0  # time spent authorizing HTTP requests (parsing, rules, evaluation)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, principal: str, action: str, resource: str, allowed: bool, message: str = "") -> None:
        with self.lock:
            entry = self.checks.setdefault((principal, action, resource), {"count": 0, "denied": 0, "message": ""})
            entry["count"] += 1
            if not allowed:
                entry["denied"] += 1
                entry["message"] = message

    def summary(self) -> dict[str, Any]:
        with self.lock:
            checks = [
                {"principal": p, "action": a, "resource": r, **entry}
                for (p, a, r), entry in sorted(self.checks.items())
            ]
            return {
                "distinct_checks": len(checks),
                "requests_checked": sum(c["count"] for c in checks),
                "denied": [c for c in checks if c["denied"]],
                "checks": checks,
                "unmapped_root_calls": dict(sorted(self.unmapped.items())),
                "authorization_seconds": round(self.seconds, 3),
            }

    def clear(self) -> None:
        with self.lock:
            self.checks.clear()
            self.unmapped.clear()
            self.seconds = 0.0


class ServerState(AccountState):
    """AccountState plus what only the local SageMaker knows."""

    def __init__(self, account: str, sagemaker: Any = None) -> None:
        super().__init__(account)
        self.sagemaker = sagemaker
        self.lambda_service: Any = None

    def lambda_url_target(self, url_id: str) -> tuple[str, str, str] | None:
        return self.lambda_service.url_target(url_id) if self.lambda_service is not None else None

    def function_policy(self, function_arn: str) -> dict[str, Any] | None:
        return self.lambda_service.policy(function_arn) if self.lambda_service is not None else None

    def endpoint_config_kms_key(self, region: str, name: str) -> str | None:
        if self.sagemaker is None:
            return None
        return self.sagemaker.endpoint_config_kms_key(region, name)

    def next_model_package_version(self, region: str, group: str) -> int:
        if self.sagemaker is None:
            return 1
        return self.sagemaker.next_model_package_version(region, group)


class LocalIam:
    def __init__(self, *, account: str, sagemaker: Any = None, engine: PolicyEngine | None = None) -> None:
        self.account = account
        self.sessions = Sessions(account)
        self.state = ServerState(account, sagemaker)
        self.engine = engine or PolicyEngine()
        self.decisions = DecisionLog()

    # -- HTTP ----------------------------------------------------------------------------------------
    def authorize_environ(self, environ: dict[str, Any], default_region: str) -> Response | None:
        """None to let the request through; otherwise the error response AWS would send."""
        started = time.perf_counter()
        try:
            return self._authorize_environ(environ, default_region)
        finally:
            elapsed = time.perf_counter() - started
            with self.decisions.lock:
                self.decisions.seconds += elapsed

    def _authorize_environ(self, environ: dict[str, Any], default_region: str) -> Response | None:
        body = read_body(environ)
        call = parse(environ, body, default_region)
        if call is None:
            return None
        if call.service == "sts" and call.operation == "AssumeRoleWithWebIdentity":
            decision = self.authorize_web_identity(call)
            return None if decision.allowed else _denied_response(call, decision)
        try:
            principal = self.sessions.resolve(call.access_key)
        except UnknownAccessKey:
            return _error_response(
                call, "InvalidClientTokenId", "The security token included in the request is invalid.", 403
            )
        decision = self.authorize(principal, call)
        return None if decision.allowed else _denied_response(call, decision)

    # -- decisions ------------------------------------------------------------------------------------
    def authorize(self, principal: Principal, call: ApiCall) -> Decision:
        request = rules.Request(call=call, account=self.account, state=self.state, via_service=principal.via_service)
        try:
            checks = rules.checks_for(request)
        except (KeyError, TypeError, ValueError) as exc:
            # A request the rule did not expect (a parameter missing or shaped otherwise): a bug in
            # actions.py. The account root goes on; a role is refused, never let through unchecked.
            log.exception("authorization rule for %s:%s failed", call.service, call.operation)
            if principal.is_root:
                return Decision(True)
            message = f"local AWS could not authorize {call.service}:{call.operation} ({exc!r}); see its log"
            return Decision(False, message, f"{call.service}:{call.operation}")
        except rules.Unmapped as unmapped:
            if principal.is_root:
                with self.decisions.lock:
                    self.decisions.unmapped[str(unmapped)] = self.decisions.unmapped.get(str(unmapped), 0) + 1
                return Decision(True)
            message = (
                f"local AWS has no authorization rule for {unmapped} (local_aws/iam/actions.py), so it refuses "
                f"it for {principal.arn}: add the rule from AWS's Service Authorization Reference"
            )
            log.warning(message)
            return Decision(False, message, str(unmapped))
        return self.evaluate_all(principal, checks)

    def evaluate_all(self, principal: Principal, checks: list[rules.Check]) -> Decision:
        alternatives: dict[str, list[tuple[rules.Check, Decision]]] = {}
        for check in checks:
            if check.any_of:
                alternatives.setdefault(check.any_of, []).append((check, self.evaluate(principal, check, record=False)))
                continue
            decision = self.evaluate(principal, check)
            if not decision.allowed:
                return decision
        for group in alternatives.values():
            # One allowed alternative is what AWS authorizes the call against; else the first refusal.
            check, decision = next(((c, d) for c, d in group if d.allowed), group[0])
            self._record(principal, check, decision)
            if not decision.allowed:
                return decision
        return Decision(True)

    def evaluate(self, principal: Principal, check: rules.Check, *, record: bool = True) -> Decision:
        simulation = self._simulation(principal, check)
        verdict = self.engine.evaluate(simulation)
        message = "" if verdict.allowed else _denial_message(principal, check, verdict)
        decision = Decision(verdict.allowed, message, check.action)
        if record:
            self._record(principal, check, decision)
        return decision

    def _record(self, principal: Principal, check: rules.Check, decision: Decision) -> None:
        self.decisions.record(principal.arn, check.action, check.resource, decision.allowed, decision.message)
        if not decision.allowed:
            log.info("denied: %s", decision.message)

    def _simulation(self, principal: Principal, check: rules.Check) -> dict[str, Any]:
        identity: list[dict[str, Any]] = []
        boundary = None
        if principal.is_root:
            identity = [{"name": "account root", "policy": ALLOW_ALL}]
        elif principal.kind == "role":
            role = self.state.role(principal.role_arn or "")
            if role is not None:
                identity = [p for p in role.identity if p["policy"]]
                boundary = role.boundary
        context: dict[str, Any] = {
            # Local AWS listens on plain HTTP on loopback; boto3 always uses TLS against AWS.
            "aws:SecureTransport": "true",
            "aws:CurrentTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "aws:EpochTime": str(int(time.time())),
            "aws:PrincipalAccount": principal.account,
        }
        if principal.kind == "service":
            context["aws:PrincipalServiceName"] = principal.arn
            context["aws:PrincipalIsAWSService"] = "true"
        else:
            context["aws:PrincipalArn"] = principal.role_arn or principal.arn
            context["aws:PrincipalType"] = {"role": "AssumedRole", "federated": "WebIdentity"}.get(
                principal.kind, "Account"
            )
            context["aws:PrincipalIsAWSService"] = "false"
        if principal.via_service:
            context["aws:CalledViaFirst"] = principal.via_service
        context.update(check.context)
        simulation: dict[str, Any] = {
            "identityPolicies": identity,
            "request": {
                "principal": principal.arn,
                "action": check.action,
                "resource": {"resource": check.resource, "accountId": _account_of(check.resource, self.account)},
                "contextVariables": context,
            },
        }
        resource_policy = self._resource_policy(check)
        if resource_policy is not None:
            simulation["resourcePolicy"] = resource_policy
        if boundary is not None:
            simulation["permissionBoundaryPolicies"] = [{"name": "permissions boundary", "policy": boundary}]
        return simulation

    def _resource_policy(self, check: rules.Check) -> dict[str, Any] | None:
        ref = check.policy
        if ref is None:
            return None
        if ref.kind == "bucket":
            return self.state.bucket_policy(ref.name)
        if ref.kind == "topic":
            return self.state.topic_policy(ref.name)
        if ref.kind == "key":
            found = self.state.kms_key(ref.name.split(":")[3], ref.name)
            return found[1] if found else None
        if ref.kind == "repository":
            return self.state.repository_policy(_region_of(check.resource), ref.name)
        if ref.kind == "trust":
            role = self.state.role(ref.name)
            return role.trust if role else None
        if ref.kind == "function":
            return self.state.function_policy(ref.name)
        raise ValueError(f"unknown resource policy kind {ref.kind!r}")

    # -- STS ----------------------------------------------------------------------------------------
    def authorize_web_identity(self, call: ApiCall) -> Decision:
        """AssumeRoleWithWebIdentity: the token's issuer must be an IAM OIDC provider of the account
        with the token's audience among its client ids, and the role's trust policy must allow the
        provider with the token's claims as ``<issuer>:<claim>`` condition keys. The token's
        signature is not checked (local tokens are minted by local mode)."""
        from local_aws.iam.web_identity import WebIdentityError, claims_of

        role_arn = call.params.get("RoleArn", "")
        try:
            claims = claims_of(call.params.get("WebIdentityToken", ""))
        except WebIdentityError as exc:
            return Decision(False, str(exc), "sts:AssumeRoleWithWebIdentity")
        issuer = str(claims.get("iss", "")).removeprefix("https://").rstrip("/")
        provider = self.state.oidc_provider(issuer)
        if provider is None:
            return Decision(
                False, f"No OpenIDConnect provider found in your account for https://{issuer}", "InvalidIdentityToken"
            )
        audiences = claims.get("aud")
        audiences = audiences if isinstance(audiences, list) else [audiences]
        if not set(audiences) & set(provider["client_ids"]):
            return Decision(False, "Incorrect token audience", "InvalidIdentityToken")
        # Only the claims AWS STS evaluates for an OIDC issuer such as a GitLab instance (IAM User Guide,
        # "Available keys for OIDC federation"); provider-specific claims exist only for GitHub,
        # Google, CircleCI and OCI. A condition on any other claim of a GitLab token never matches.
        context = {
            f"{issuer}:{k}": (v if isinstance(v, list) else str(v))
            for k, v in claims.items()
            if k in WEB_IDENTITY_CONDITION_CLAIMS
        }
        check = rules.Check("sts:AssumeRoleWithWebIdentity", role_arn, context, rules.PolicyRef("trust", role_arn))
        principal = Principal(arn=provider["arn"], account=self.account, kind="federated")
        return self.evaluate(principal, check)

    def assume_as_service(
        self,
        role_arn: str,
        service_name: str,
        *,
        source_arn: str | None = None,
        session_name: str | None = None,
        hold: bool = False,
    ) -> dict[str, str]:
        """A service assuming a role (Lambda running a function, MWAA running tasks, SageMaker
        running a job): the role's trust policy must allow the service principal with the
        confused-deputy context AWS sets (aws:SourceAccount, aws:SourceArn). ``hold``: the service
        makes calls with this session itself (kms:ViaService etc.). Raises AccessDenied."""
        principal = service(service_name, self.account)
        context: dict[str, Any] = {"aws:SourceAccount": self.account}
        if source_arn:
            context["aws:SourceArn"] = source_arn
        check = rules.Check("sts:AssumeRole", role_arn, context, rules.PolicyRef("trust", role_arn))
        if self.state.role(role_arn) is None:
            raise AccessDenied(f"Could not assume role {role_arn}: the role does not exist")
        decision = self.evaluate(principal, check)
        if not decision.allowed:
            raise AccessDenied(decision.message)
        credentials = issue_session(self.account, role_arn, session_name or service_name.split(".")[0])
        if hold:
            self.sessions.mark_service_session(credentials["AccessKeyId"], service_name)
        return credentials

    def authorize_service(self, service_name: str, checks: list[rules.Check]) -> Decision:
        """A service acting as itself, e.g. CloudWatch publishing an alarm notification."""
        return self.evaluate_all(service(service_name, self.account), checks)

    def close(self) -> None:
        self.engine.close()


class AccessDenied(Exception):
    pass


def _account_of(arn: str, default: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 and parts[4] else default


def _region_of(arn: str) -> str:
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 and parts[3] else "us-east-1"


def _denial_message(principal: Principal, check: rules.Check, verdict: Verdict) -> str:
    """AWS's wording: 'User: <principal> is not authorized to perform: <action> on resource:
    <resource> because no identity-based policy allows the <action> action' (and variants)."""
    head = f"User: {principal.arn} is not authorized to perform: {check.action} on resource: {check.resource}"
    if verdict.result == "Error":
        return f"{head} (local AWS could not evaluate the request: {json.dumps(verdict.errors)})"
    kinds = {(d.get("policyType"), d.get("denialType")) for d in verdict.denials}
    for policy_type, wording in (
        ("identity", "an identity-based policy"),
        ("resource", "a resource-based policy"),
        ("permissionBoundary", "a permissions boundary"),
    ):
        if (policy_type, "Explicit") in kinds:
            return f"{head} with an explicit deny in {wording}"
    if ("permissionBoundary", "Implicit") in kinds:
        return f"{head} because no permissions boundary allows the {check.action} action"
    # A service or federated principal has no identity policy, and neither does a KMS key policy
    # that does not delegate to IAM: then it is the resource-based policy that did not allow.
    if principal.kind in ("role", "root") and (check.policy is None or ("identity", "Implicit") in kinds):
        return f"{head} because no identity-based policy allows the {check.action} action"
    return f"{head} because no resource-based policy allows the {check.action} action"


def _error_response(call: ApiCall, code: str, message: str, status: int) -> Response:
    service_name = call.service
    if service_name == "s3":
        body = f"<Error><Code>{code}</Code><Message>{escape(message)}</Message></Error>"
        return Response(body, status=status, content_type="application/xml")
    if service_name in _QUERY_PROTOCOL:
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
            f"<Message>{escape(message)}</Message></Error><RequestId>local</RequestId></ErrorResponse>"
        )
        return Response(body, status=status, content_type="text/xml")
    response = Response(
        json.dumps({"__type": code, "message": message, "Message": message}),
        status=status,
        content_type="application/x-amz-json-1.1",
    )
    response.headers["x-amzn-ErrorType"] = code
    if call.service == "cloudwatch":  # awsQueryCompatible: botocore reads the query error code
        response.headers["x-amzn-query-error"] = f"{code};Sender"
    return response


def _denied_response(call: ApiCall, decision: Decision) -> Response:
    if decision.action == "InvalidIdentityToken":
        return _error_response(call, "InvalidIdentityToken", decision.message, 400)
    code, status = _DENIED.get(call.service, ("AccessDeniedException", 400))
    return _error_response(call, code, decision.message, status)
