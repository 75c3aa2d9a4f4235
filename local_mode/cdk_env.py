"""The ``local`` environment of the CDK app, created in the local AWS.

The app is synthesized as ``cdk synth`` would (config/local.yaml); each stack's template is then
read and its resources with physical names are created through boto3 (buckets, SNS topics and
subscriptions, ECR repositories, IAM roles, the KMS key and its alias, SSM parameters, log groups,
CloudWatch alarms). CloudFormation intrinsics in the values (``Ref``, ``Fn::GetAtt``, ``Fn::Join``,
``Fn::Select``, ``Fn::Split``, ``Fn::Sub``) are evaluated against what was created, which is also
how each ModelPipeline's configuration (published as ``pipeline.json`` by a BucketDeployment) gets
its real repository URI, role ARN and key ARN.

Policies are created too, because local AWS enforces them: the roles' inline and attached
policies (``AWS::IAM::Policy``), the KMS key policy, bucket and topic policies, default bucket
encryption and topic encryption, the GitLab OIDC provider and the alarms' actions. A policy
statement that names a resource local mode does not create (a Lambda, the MWAA environment) cannot
be resolved and is left out, and listed in the report (``dropped_statements``).

The trigger Lambda is registered with local Lambda (``local_aws.lambda_service``) with its role,
environment, per-project aliases and their AWS_IAM function URLs, so CI calls it as on AWS, and with
its resource-based policy (the ``AWS::Lambda::Permission``s: each project's drift topic may invoke
that project's alias), so the drift topics' ``lambda`` subscriptions deliver to it as on AWS.
Resources that need a cloud to exist (VPC, MWAA, Lambda-backed custom resources, dashboards) are
listed as skipped: locally, Airflow runs as processes.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SETTINGS_FILE = REPO / "config" / "local.yaml"
TRIGGER_HANDLER = "dag_trigger_fn.handler.handler"
TRIGGER_SOURCE = REPO / "lambda_src" / "dag_trigger"


class Unresolvable(ValueError):
    """A value depends on something local mode does not create."""


@dataclass
class StackTemplate:
    name: str
    template: dict[str, Any]

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.template.get("Resources", {})


@dataclass
class SynthesizedEnvironment:
    environment: str
    account: str
    region: str
    stacks: list[StackTemplate]
    # (stack name, the ModelPipeline's configuration with CloudFormation values for its tokens)
    pipelines: list[tuple[str, dict[str, Any]]]
    seconds: float = 0.0
    ci: Any = None  # local_mode.actors.CiIdentity of the environment's GitLab settings


def synthesize(
    environment: str = "local",
    settings_file: Path = SETTINGS_FILE,
    *,
    projects_dir: Path | None = None,
    project_files: Sequence[Path] = (),
) -> SynthesizedEnvironment:
    """Synthesize the app in this process (as the tests do): aws-cdk-lib + jsii, no AWS calls.
    ``projects_dir`` replaces projects/; ``project_files`` add (or replace) single projects."""
    import time

    started = time.monotonic()
    os.environ.setdefault("CDK_VALIDATION", "false")
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "1")
    node_bin = REPO / "node_modules" / ".bin"
    if node_bin.is_dir() and str(node_bin) not in os.environ.get("PATH", ""):
        os.environ["PATH"] = f"{node_bin}{os.pathsep}{os.environ.get('PATH', '')}"
    import sys

    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    import aws_cdk as cdk

    from app import build_app
    from mlops_constructs.model_pipeline import ModelPipeline
    from stacks.cdk_context import cdk_json_context

    outdir = tempfile.mkdtemp(prefix="mlops-local-synth-")
    extra: dict[str, Any] = {"aws:cdk:bundling-stacks": []}
    if projects_dir is not None:
        extra["projects_dir"] = str(projects_dir)
    if project_files:
        extra["project_files"] = ",".join(str(Path(path).resolve()) for path in project_files)
    context = cdk_json_context(settings_file=str(settings_file), environments=environment, **extra)
    app = build_app(cdk.App(context=context, outdir=outdir), nag=False)
    assembly = app.synth()
    stacks: list[StackTemplate] = []

    def collect(asm) -> None:
        for stack in asm.stacks:
            stacks.append(StackTemplate(stack.stack_name, stack.template))
        for nested in getattr(asm, "nested_assemblies", []):
            collect(nested.nested_assembly)

    collect(assembly)
    pipelines = []
    account = region = None
    for construct in app.node.find_all():
        if isinstance(construct, ModelPipeline):
            stack = cdk.Stack.of(construct)
            account, region = stack.account, stack.region
            pipelines.append((stack.stack_name, stack.resolve(construct.config.model_dump(mode="json"))))
    if not stacks:
        raise RuntimeError(f"environment {environment!r} has no stacks in {settings_file}")
    from local_mode.actors import CiIdentity
    from stacks.settings import load_settings

    (settings,) = load_settings(Path(settings_file)).select([environment])
    return SynthesizedEnvironment(
        environment=environment,
        account=account or "123456789012",
        region=region or "us-east-1",
        stacks=stacks,
        pipelines=pipelines,
        seconds=time.monotonic() - started,
        ci=CiIdentity(
            gitlab_url=str(settings.ci.gitlab_url).rstrip("/"), mlops_project_path=settings.ci.mlops_project_path
        ),
    )


@dataclass
class Evaluator:
    """CloudFormation intrinsic functions over what local mode created for one stack."""

    account: str
    region: str
    stack_name: str
    refs: dict[str, str] = field(default_factory=dict)
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1 or not next(iter(value)).startswith(("Ref", "Fn::")):
            return {k: self(v) for k, v in value.items()}
        ((function, argument),) = value.items()
        if function == "Ref":
            return self._ref(argument)
        if function == "Fn::GetAtt":
            logical, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            try:
                return self.attributes[(logical, attribute)]
            except KeyError:
                raise Unresolvable(f"{logical}.{attribute}") from None
        if function == "Fn::Join":
            separator, items = argument
            return separator.join(str(item) for item in self(items))
        if function == "Fn::Select":
            index, items = argument
            return self(items)[int(self(index))]
        if function == "Fn::Split":
            separator, text = argument
            return str(self(text)).split(separator)
        if function == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            import re

            return re.sub(
                r"\$\{([^}]+)\}",
                lambda m: str(self(variables[m[1]])) if m[1] in variables else str(self._sub_name(m[1])),
                text,
            )
        raise Unresolvable(function)

    def _sub_name(self, name: str) -> str:
        if "." in name:
            logical, attribute = name.split(".", 1)
            return self({"Fn::GetAtt": [logical, attribute]})
        return self._ref(name)

    def _ref(self, name: str) -> str:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.stack_name,
            "AWS::NoValue": None,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.refs:
            return self.refs[name]
        raise Unresolvable(f"Ref {name}")


@dataclass
class ProvisionReport:
    created: list[str] = field(default_factory=list)  # "AWS::S3::Bucket mlops-local-data-..."
    skipped: dict[str, int] = field(default_factory=dict)  # resource type -> count
    pipelines: list[dict[str, Any]] = field(default_factory=list)  # resolved PipelineConfig documents
    trigger_env: dict[str, str] | None = None  # the trigger Lambda's environment, when the app has it
    trigger_role_arn: str | None = None  # the role the trigger Lambda runs as
    trigger_function_name: str | None = None
    trigger_urls: dict[str, str] = field(default_factory=dict)  # project (alias) -> function URL
    trigger_spec: dict[str, Any] | None = None  # what local Lambda runs (local_aws.lambda_service)
    mwaa_environment_name: str | None = None
    mwaa_execution_role_arn: str | None = None  # the role DAG tasks run as
    # "stack/logical: statement" of policy statements naming resources local mode does not create
    dropped_statements: list[str] = field(default_factory=list)
    roles: dict[str, str] = field(default_factory=dict)  # "stack/logical id" -> role ARN


# Creation order: what others reference first.
ROLE_POLICIES = "AWS::IAM::Role (trust and inline policies)"
_ORDER = [
    "AWS::KMS::Key",
    "AWS::KMS::Alias",
    "AWS::SSM::Parameter",
    "AWS::S3::Bucket",
    "AWS::S3::BucketPolicy",
    "AWS::SNS::Topic",
    "AWS::SNS::TopicPolicy",
    "AWS::ECR::Repository",
    "AWS::Logs::LogGroup",
    "AWS::IAM::OIDCProvider",
    "AWS::IAM::Role",
    # Roles first, then their trust and inline policies: a trust policy may name another role.
    ROLE_POLICIES,
    "AWS::Lambda::Function",
    "AWS::Lambda::Version",
    "AWS::Lambda::Alias",
    "AWS::Lambda::Url",
    # After the aliases: a drift topic's subscriber and its permission name the project's alias.
    "AWS::Lambda::Permission",
    "AWS::SNS::Subscription",
    "AWS::IAM::ManagedPolicy",
    "AWS::IAM::Policy",
    "AWS::SecretsManager::Secret",
    "AWS::CloudWatch::Alarm",
    "AWS::MWAA::Environment",
]


def provision(synth: SynthesizedEnvironment, session) -> ProvisionReport:
    """Create the stacks' resources in the local AWS, platform stack first (others read its SSM
    parameters), and resolve every ModelPipeline's configuration."""
    report = ProvisionReport()
    ordered = sorted(synth.stacks, key=lambda s: 0 if "platform" in s.name else 1)
    evaluators: dict[str, Evaluator] = {}
    for stack in ordered:
        evaluator = Evaluator(synth.account, synth.region, stack.name)
        evaluators[stack.name] = evaluator
        ssm = session.client("ssm")
        for name, parameter in stack.template.get("Parameters", {}).items():
            if parameter.get("Type", "").startswith("AWS::SSM::Parameter::Value") and "Default" in parameter:
                try:
                    evaluator.parameters[name] = ssm.get_parameter(Name=parameter["Default"])["Parameter"]["Value"]
                except Exception:  # noqa: BLE001, S110 - e.g. the CDK bootstrap version: not needed locally
                    pass
        by_type: dict[str, list[tuple[str, dict]]] = {}
        for logical, resource in stack.resources.items():
            by_type.setdefault(resource["Type"], []).append((logical, resource.get("Properties", {})))
        by_type[ROLE_POLICIES] = list(by_type.get("AWS::IAM::Role", []))
        for kind in _ORDER:
            for logical, properties in by_type.pop(kind, []):
                try:
                    created = _create(kind, logical, properties, evaluator, session, stack.name, report)
                except Unresolvable:
                    created = None
                if created:
                    report.created.append(f"{kind} {created}")
                elif kind != ROLE_POLICIES:  # the second step of a role, counted with the role
                    report.skipped[kind] = report.skipped.get(kind, 0) + 1
        for kind, items in by_type.items():
            report.skipped[kind] = report.skipped.get(kind, 0) + len(items)
    for stack_name, raw in synth.pipelines:
        report.pipelines.append(evaluators[stack_name](raw))
    return report


_NO_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
}


def _register_trigger(session, report: ProvisionReport) -> dict[str, str]:
    """(Re-)register the trigger function with local Lambda; returns its URLs by qualifier."""
    import urllib.request

    endpoint = session.client("s3").meta.endpoint_url
    request = urllib.request.Request(  # noqa: S310 - the local AWS of this run
        f"{endpoint}/_local_aws/lambda/functions",
        data=json.dumps(report.trigger_spec).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.loads(response.read())["Urls"]


def resolve_policy(document: Any, ev: Evaluator, where: str, report: ProvisionReport) -> dict[str, Any] | None:
    """A policy document with its intrinsics evaluated, statement by statement: a statement naming
    a resource local mode does not create is left out (and reported), the others stay."""
    if not document:
        return None
    statements = []
    for statement in document.get("Statement", []):
        try:
            statements.append(ev(statement))
        except Unresolvable as missing:
            report.dropped_statements.append(f"{where}: {statement.get('Sid') or statement.get('Action')} ({missing})")
    return {"Version": document.get("Version", "2012-10-17"), "Statement": statements}


def _create(
    kind: str, logical: str, p: dict, ev: Evaluator, session, stack: str, report: ProvisionReport
) -> str | None:
    where = f"{stack}/{logical}"
    if kind == "AWS::KMS::Key":
        arguments = {"Description": f"{stack}/{logical}"}
        policy = resolve_policy(p.get("KeyPolicy"), ev, where, report)
        if policy:
            arguments["Policy"] = json.dumps(policy)
        key = session.client("kms").create_key(**arguments)["KeyMetadata"]
        ev.refs[logical], ev.attributes[(logical, "Arn")] = key["KeyId"], key["Arn"]
        return key["Arn"]
    if kind == "AWS::KMS::Alias":
        name = ev(p["AliasName"])
        session.client("kms").create_alias(AliasName=name, TargetKeyId=ev(p["TargetKeyId"]))
        return name
    if kind == "AWS::SSM::Parameter":
        name = ev(p["Name"])
        session.client("ssm").put_parameter(Name=name, Value=str(ev(p["Value"])), Type="String", Overwrite=True)
        ev.refs[logical] = name
        return name
    if kind == "AWS::S3::Bucket":
        if "BucketName" not in p:
            return None
        name = ev(p["BucketName"])
        s3 = session.client("s3")
        try:
            s3.create_bucket(Bucket=name)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
        ev.refs[logical], ev.attributes[(logical, "Arn")] = name, f"arn:aws:s3:::{name}"
        encryption = p.get("BucketEncryption")
        if encryption:
            # CloudFormation's ServerSideEncryptionByDefault is the API's ApplyServerSideEncryptionByDefault.
            rules = [
                {
                    "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
                    **({"BucketKeyEnabled": rule["BucketKeyEnabled"]} if "BucketKeyEnabled" in rule else {}),
                }
                for rule in ev(encryption["ServerSideEncryptionConfiguration"])
            ]
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        return name
    if kind == "AWS::S3::BucketPolicy":
        bucket = ev(p["Bucket"])
        policy = resolve_policy(p["PolicyDocument"], ev, where, report)
        session.client("s3").put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
        return f"policy of {bucket}"
    if kind == "AWS::SNS::Topic":
        if "TopicName" not in p:
            return None
        attributes = {"KmsMasterKeyId": str(ev(p["KmsMasterKeyId"]))} if p.get("KmsMasterKeyId") else {}
        arn = session.client("sns").create_topic(Name=ev(p["TopicName"]), Attributes=attributes)["TopicArn"]
        ev.refs[logical], ev.attributes[(logical, "TopicArn")] = arn, arn
        return arn
    if kind == "AWS::SNS::TopicPolicy":
        policy = json.dumps(resolve_policy(p["PolicyDocument"], ev, where, report))
        topics = [ev(topic) for topic in p["Topics"]]
        for topic in topics:
            session.client("sns").set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=policy)
        return f"policy of {', '.join(topics)}"
    if kind == "AWS::SNS::Subscription":
        topic, protocol, endpoint = ev(p["TopicArn"]), ev(p["Protocol"]), ev(p["Endpoint"])
        session.client("sns").subscribe(TopicArn=topic, Protocol=protocol, Endpoint=endpoint)
        return f"{protocol}:{endpoint} -> {topic}"
    if kind == "AWS::ECR::Repository":
        name = ev(p["RepositoryName"])
        ecr = session.client("ecr")
        try:
            # Immutable tags as the template says: a release version is never overwritten.
            repo = ecr.create_repository(
                repositoryName=name, imageTagMutability=p.get("ImageTagMutability", "MUTABLE")
            )["repository"]
        except ecr.exceptions.RepositoryAlreadyExistsException:
            repo = ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
        ev.refs[logical] = name
        ev.attributes[(logical, "Arn")] = repo["repositoryArn"]
        ev.attributes[(logical, "RepositoryUri")] = repo["repositoryUri"]
        if p.get("RepositoryPolicyText"):
            policy = resolve_policy(p["RepositoryPolicyText"], ev, where, report)
            ecr.set_repository_policy(repositoryName=name, policyText=json.dumps(policy))
        return name
    if kind == "AWS::IAM::OIDCProvider":
        iam = session.client("iam")
        url = ev(p["Url"])
        arn = iam.create_open_id_connect_provider(
            Url=url,
            ClientIDList=[ev(c) for c in p.get("ClientIdList", [])],
            ThumbprintList=[ev(t) for t in p.get("ThumbprintList", [])] or ["0" * 40],
        )["OpenIDConnectProviderArn"]
        ev.refs[logical], ev.attributes[(logical, "Arn")] = arn, arn
        return arn
    if kind == "AWS::IAM::Role":
        name = ev(p["RoleName"]) if "RoleName" in p else f"{stack}-{logical}"[:64]
        iam = session.client("iam")
        try:  # nobody may assume it until its own trust policy is set (ROLE_POLICIES)
            role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(_NO_TRUST))["Role"]
        except iam.exceptions.EntityAlreadyExistsException:
            role = iam.get_role(RoleName=name)["Role"]
        ev.refs[logical], ev.attributes[(logical, "Arn")] = name, role["Arn"]
        report.roles[where] = role["Arn"]
        return name
    if kind == ROLE_POLICIES:
        name = ev.refs[logical]
        iam = session.client("iam")
        trust = resolve_policy(p["AssumeRolePolicyDocument"], ev, where, report)
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
        for inline in p.get("Policies", []):
            document = resolve_policy(inline["PolicyDocument"], ev, where, report)
            if document["Statement"]:  # IAM refuses an empty policy; nothing was left to grant
                iam.put_role_policy(
                    RoleName=name, PolicyName=ev(inline["PolicyName"]), PolicyDocument=json.dumps(document)
                )
        for managed in p.get("ManagedPolicyArns", []):
            try:
                iam.attach_role_policy(RoleName=name, PolicyArn=ev(managed))
            except (iam.exceptions.NoSuchEntityException, Unresolvable):
                # AWS managed policies are not loaded in local IAM: only the CDK's own handler roles
                # (Lambda basic execution) use them, and nothing runs as those roles locally.
                report.dropped_statements.append(f"{where}: managed policy {managed}")
        return None
    if kind == "AWS::IAM::ManagedPolicy":
        iam = session.client("iam")
        document = resolve_policy(p["PolicyDocument"], ev, where, report)
        name = ev(p["ManagedPolicyName"]) if "ManagedPolicyName" in p else f"{stack}-{logical}"[:128]
        arn = iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(document))["Policy"]["Arn"]
        for role in p.get("Roles", []):
            iam.attach_role_policy(RoleName=ev(role), PolicyArn=arn)
        ev.refs[logical] = arn
        return arn
    if kind == "AWS::IAM::Policy":
        iam = session.client("iam")
        resolved = resolve_policy(p["PolicyDocument"], ev, where, report)
        if not resolved["Statement"]:
            return None
        document = json.dumps(resolved)
        roles = []
        for role in p.get("Roles", []):
            try:
                roles.append(ev(role))
            except Unresolvable:
                continue
        for role in roles:
            iam.put_role_policy(RoleName=role, PolicyName=ev(p["PolicyName"]), PolicyDocument=document)
        return f"{ev(p['PolicyName'])} on {', '.join(roles) or 'no role'}"
    if kind == "AWS::SecretsManager::Secret":
        if "Name" not in p:
            return None
        name = ev(p["Name"])
        session.client("secretsmanager").create_secret(Name=name, SecretString="{}")
        ev.refs[logical] = name
        return name
    if kind == "AWS::Logs::LogGroup":
        if "LogGroupName" not in p:
            return None
        name = ev(p["LogGroupName"])
        logs = session.client("logs")
        try:
            logs.create_log_group(logGroupName=name)
        except logs.exceptions.ResourceAlreadyExistsException:
            pass
        ev.refs[logical] = name
        ev.attributes[(logical, "Arn")] = f"arn:aws:logs:{ev.region}:{ev.account}:log-group:{name}:*"
        return name
    if kind == "AWS::CloudWatch::Alarm":
        alarm = {k: ev(v) for k, v in p.items()}
        if "MetricName" not in alarm:
            return None  # metric-math alarms: moto evaluates none of them anyway
        session.client("cloudwatch").put_metric_alarm(**{k: v for k, v in alarm.items() if v is not None})
        return alarm["AlarmName"]
    if kind == "AWS::MWAA::Environment":
        # Airflow itself runs as local processes; what they need is who its tasks run as.
        report.mwaa_environment_name = ev(p["Name"])
        report.mwaa_execution_role_arn = ev(p["ExecutionRoleArn"])
        return None
    if kind == "AWS::Lambda::Function":
        if p.get("Handler") == TRIGGER_HANDLER:
            variables = p.get("Environment", {}).get("Variables", {})
            report.trigger_env = {k: str(ev(v)) for k, v in variables.items()}
            report.trigger_role_arn = ev(p["Role"])
            report.trigger_function_name = ev(p.get("FunctionName", logical))
            arn = f"arn:aws:lambda:{ev.region}:{ev.account}:function:{report.trigger_function_name}"
            ev.refs[logical], ev.attributes[(logical, "Arn")] = report.trigger_function_name, arn
            report.trigger_spec = {
                "name": report.trigger_function_name,
                "region": ev.region,
                "handler": TRIGGER_HANDLER,
                "code_dirs": [str(TRIGGER_SOURCE)],
                "role_arn": report.trigger_role_arn,
                "environment": report.trigger_env,
                "timeout_seconds": p.get("Timeout", 60),
                "aliases": [],
                "urls": [],
            }
            _register_trigger(session, report)
            return f"trigger Lambda {report.trigger_function_name} in local Lambda"
        return None
    if kind == "AWS::Lambda::Version":
        function = ev(p["FunctionName"])  # Ref of the function: its name
        ev.refs[logical] = f"arn:aws:lambda:{ev.region}:{ev.account}:function:{function}:1"
        ev.attributes[(logical, "Version")] = "1"
        return f"version 1 of {function}"
    if kind == "AWS::Lambda::Alias":
        function, name = ev(p["FunctionName"]), ev(p["Name"])
        if report.trigger_spec is None or function != report.trigger_spec["name"]:
            return None
        report.trigger_spec["aliases"].append(name)
        ev.refs[logical] = f"arn:aws:lambda:{ev.region}:{ev.account}:function:{function}:{name}"
        _register_trigger(session, report)
        return f"alias {name} of {function}"
    if kind == "AWS::Lambda::Url":
        target, qualifier = ev(p["TargetFunctionArn"]), p.get("Qualifier")
        if report.trigger_spec is None or target.split(":")[6] != report.trigger_spec["name"]:
            return None
        report.trigger_spec["urls"].append({"qualifier": qualifier, "auth_type": p["AuthType"]})
        urls = _register_trigger(session, report)
        report.trigger_urls = {k: v for k, v in urls.items() if k != "$LATEST"}
        ev.attributes[(logical, "FunctionUrl")] = urls[qualifier or "$LATEST"]
        ev.attributes[(logical, "FunctionArn")] = target + (f":{qualifier}" if qualifier else "")
        return f"{p['AuthType']} URL of {target.split(':')[6]}:{qualifier}"
    if kind == "AWS::Lambda::Permission":
        target = ev(p["FunctionName"])
        if report.trigger_spec is None or target.split(":")[6] != report.trigger_spec["name"]:
            return None
        policy = report.trigger_spec.setdefault("policy", {"Version": "2012-10-17", "Statement": []})
        policy["Statement"].append(_permission_statement(logical, p, target, ev))
        _register_trigger(session, report)
        return f"permission {logical} of {target.split(':', 6)[6]}"
    return None


def _permission_statement(logical: str, p: dict[str, Any], target: str, ev: Evaluator) -> dict[str, Any]:
    """An AWS::Lambda::Permission as the statement Lambda adds to the function's resource-based
    policy (Lambda Developer Guide, "Viewing resource-based IAM policies in Lambda"): the
    principal, the action on the function or alias, and SourceArn/SourceAccount as conditions."""
    principal = ev(p["Principal"])
    statement: dict[str, Any] = {
        "Sid": logical,
        "Effect": "Allow",
        "Principal": {"Service": principal} if principal.endswith(".amazonaws.com") else {"AWS": principal},
        "Action": ev(p["Action"]),
        "Resource": target,
    }
    condition: dict[str, Any] = {}
    if p.get("SourceArn") is not None:
        condition["ArnLike"] = {"AWS:SourceArn": ev(p["SourceArn"])}
    if p.get("SourceAccount") is not None:
        condition["StringEquals"] = {"AWS:SourceAccount": ev(p["SourceAccount"])}
    if p.get("FunctionUrlAuthType") is not None:
        condition.setdefault("StringEquals", {})["lambda:FunctionUrlAuthType"] = ev(p["FunctionUrlAuthType"])
    if condition:
        statement["Condition"] = condition
    return statement
