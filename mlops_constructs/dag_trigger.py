"""The trigger Lambda (``lambda_src/dag_trigger``): CI's only way to start DAG runs on MWAA.

One function, and for each platform project an alias named after the project with its own
function URL (auth type ``AWS_IAM``). A project's CI role may invoke only its own alias's URL
(``GitLabCiAccess``), so IAM refuses project A's role for project B's alias before any code runs;
the handler binds every request to the alias's project and checks the signed caller is that
project's CI role (Lambda passes it in ``requestContext.authorizer.iam``). A direct invocation
carries no caller identity, which is why the project is not taken from the payload.

Each project also gets a drift topic (``PlatformNames.drift_topic``): the project's models' drift
alarms notify it, and its one subscriber is the project's alias. Its policy lets CloudWatch publish
for that project's drift alarms only (``aws:SourceArn``), and the alias's permission lets SNS invoke
it from that topic only: one project's alarm cannot start another project's run.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jsii
from aws_cdk import ArnFormat, BundlingOptions, Duration, ILocalBundling, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

import mlops_core
from mlops_constructs._checkov import skip_checks
from mlops_constructs._nag import acknowledge_wildcards
from mlops_core import names
from mlops_core.names import validate_name
from mlops_core.platform_names import PlatformNames

REPO_ROOT = Path(__file__).resolve().parents[1]
HANDLER_SOURCE = REPO_ROOT / "lambda_src" / "dag_trigger"
MLOPS_CORE_SOURCE = Path(mlops_core.__file__).resolve().parent
RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
# pip/uv platform tags matching RUNTIME and ARCHITECTURE (compiled wheels such as pydantic-core).
PIP_PLATFORM = "manylinux2014_aarch64"
PIP_PYTHON_VERSION = "3.14"
ENV_MWAA_ENVIRONMENT = "MWAA_ENVIRONMENT_NAME"  # read by dag_trigger_fn.handler
ENV_PLATFORM_ENVIRONMENT = "MLOPS_ENVIRONMENT"  # the handler accepts this environment's CI roles
ENV_ARTIFACT_BUCKET = "MLOPS_ARTIFACT_BUCKET"  # where the handler reads drift check summaries
# The Airflow RBAC role the Lambda's REST calls run as: "User" may trigger and read DAG runs.
DEFAULT_AIRFLOW_ROLE = "User"


def _source_files() -> list[Path]:
    handler_files = [p for p in HANDLER_SOURCE.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    core_files = [p for p in MLOPS_CORE_SOURCE.glob("*.py")]
    return sorted(handler_files + core_files)


def source_hash(platform: str = PIP_PLATFORM, python_version: str = PIP_PYTHON_VERSION) -> str:
    """Asset hash from the inputs (handler, mlops_core, pinned requirements, target platform):
    stable across machines, unlike a hash of pip's output."""
    digest = hashlib.sha256(f"{platform}:{python_version}".encode())
    for path in _source_files():
        digest.update(str(path.relative_to(REPO_ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _find_uv() -> str | None:
    """uv on PATH, else the one installed in this virtualenv (requirements.txt pins it), which is
    found even when the venv's bin/ is not on PATH (e.g. `.venv/bin/python app.py`)."""
    beside_python = Path(sys.executable).with_name("uv")
    return shutil.which("uv") or (str(beside_python) if beside_python.is_file() else None)


def _installers(target: Path, platform: str, python_version: str) -> list[list[str]]:
    """Commands to try in order. With uv (on PATH after scripts/bootstrap.sh, and in CI) the
    cache is tried first with ``--offline``, so synth needs no network once the wheels were
    fetched (see :func:`prefetch_dependencies`); then the index. Without uv, this Python's pip.
    Either way only wheels for the Lambda's platform, nothing is built locally."""
    requirements = str(HANDLER_SOURCE / "requirements.txt")
    common = ["--target", str(target), "--python-version", python_version, "--no-compile", "-r", requirements]
    uv = _find_uv()
    if uv:
        uv_platform = platform.replace("manylinux2014_", "") + "-manylinux2014"
        command = [uv, "pip", "install", "--quiet", "--python-platform", uv_platform, "--only-binary", ":all:", *common]
        return [[*command, "--offline"], command]
    if importlib.util.find_spec("pip") is None:
        raise RuntimeError(
            "bundling the trigger Lambda needs `uv` on PATH or pip in this Python "
            f"({sys.executable}); run scripts/bootstrap.sh"
        )
    return [
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--platform",
            platform,
            "--implementation",
            "cp",
            "--only-binary=:all:",
            *common,
        ]
    ]


def _install_dependencies(target: Path, platform: str, python_version: str) -> None:
    errors = []
    for command in _installers(target, platform, python_version):
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - fixed argv
        if result.returncode == 0:
            return
        errors.append(result.stderr.strip())
    raise RuntimeError("installing the trigger Lambda's dependencies failed:\n" + "\n".join(errors))


def prefetch_dependencies() -> None:
    """Fill uv's cache with the Lambda's wheels (run once with network, e.g. in bootstrap), so
    later synths bundle offline."""
    with tempfile.TemporaryDirectory() as tmp:
        _install_dependencies(Path(tmp), PIP_PLATFORM, PIP_PYTHON_VERSION)


def build_bundle(output_dir: Path, *, platform: str = PIP_PLATFORM, python_version: str = PIP_PYTHON_VERSION) -> None:
    """Lay out the Lambda package: handler package, mlops_core, and wheels for the target."""
    output_dir.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(HANDLER_SOURCE / "dag_trigger_fn", output_dir / "dag_trigger_fn", ignore=ignore, dirs_exist_ok=True)
    shutil.copytree(MLOPS_CORE_SOURCE, output_dir / "mlops_core", ignore=ignore, dirs_exist_ok=True)
    _install_dependencies(output_dir, platform, python_version)
    shutil.rmtree(output_dir / "bin", ignore_errors=True)  # console scripts are of no use there


@jsii.implements(ILocalBundling)
class _LocalPipBundling:
    """Bundles without Docker: copies the sources and installs manylinux wheels for the runtime."""

    def try_bundle(self, output_dir: str, *, image, **_kwargs) -> bool:  # noqa: ANN001
        build_bundle(Path(output_dir))
        return True


def handler_code() -> lambda_.Code:
    return lambda_.Code.from_asset(
        str(HANDLER_SOURCE),
        asset_hash=source_hash(),
        bundling=BundlingOptions(image=RUNTIME.bundling_image, local=_LocalPipBundling()),
    )


class DagTrigger(Construct):
    """Lambda that starts allow-listed DAGs on one MWAA environment via ``airflow:InvokeRestApi``.

    :meth:`add_project` gives a project its alias and function URL (see the module docstring):
    the design choice is an alias per project *with* a function URL, so the deployed IAM policy
    tells projects apart (one alias each) and the function still sees who called.

    Its role may call the Airflow REST API as one Airflow RBAC role of that environment only
    (``arn:aws:airflow:<region>:<account>:role/<environment>/<airflow_role>``, the resource type
    InvokeRestApi authorises against) and read that environment (for the UI link). Logs go to a
    log group with retention; no AWS managed policies.

    ``reserved_concurrent_executions`` caps parallel triggers (and MWAA load); pass None in an
    account whose Lambda concurrency quota is still the new-account 10 (nothing can be reserved).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        environment_name: str,
        mwaa_environment_name: str | None = None,
        airflow_role: str = DEFAULT_AIRFLOW_ROLE,
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
        reserved_concurrent_executions: int | None = 5,
        timeout: Duration | None = None,
        memory_size: int = 256,
        log_encryption_key: kms.IKey | None = None,
        drift_topic_key: kms.IKey | None = None,
        code: lambda_.Code | None = None,
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        platform = PlatformNames(environment=environment_name, account=stack.account, region=stack.region)
        self.platform_names = platform
        # No key, no drift topics (an SNS topic of the platform is always encrypted).
        self.drift_topic_key = drift_topic_key
        self.drift_topics: dict[str, sns.Topic] = {}
        self.mwaa_environment_name = mwaa_environment_name or platform.mwaa_environment
        self.function_name = platform.trigger_function
        self.environment_name = environment_name
        self.project_aliases: dict[str, lambda_.Alias] = {}
        self.project_urls: dict[str, lambda_.FunctionUrl] = {}

        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/lambda/{self.function_name}",
            retention=log_retention,
            encryption_key=log_encryption_key,
            # Fixed name: kept on delete, removed by the rollback of a failed first create.
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Trigger Lambda of {self.mwaa_environment_name}: Airflow REST API only",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                # LogGroup.log_group_arn ends in ":*", i.e. the group's streams.
                resources=[self.log_group.log_group_arn],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["airflow:InvokeRestApi"],
                resources=[
                    stack.format_arn(
                        service="airflow",
                        resource="role",
                        resource_name=f"{self.mwaa_environment_name}/{airflow_role}",
                    )
                ],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["airflow:GetEnvironment"],
                resources=[
                    stack.format_arn(
                        service="airflow", resource="environment", resource_name=self.mwaa_environment_name
                    )
                ],
            )
        )

        self.function = lambda_.Function(
            self,
            "Function",
            function_name=self.function_name,
            description="Starts allow-listed Airflow DAG runs on MWAA for GitLab CI (idempotent per job)",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler="dag_trigger_fn.handler.handler",
            code=code or handler_code(),
            role=self.role,
            timeout=timeout or Duration.seconds(60),
            memory_size=memory_size,
            reserved_concurrent_executions=reserved_concurrent_executions,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            environment={
                ENV_MWAA_ENVIRONMENT: self.mwaa_environment_name,
                ENV_PLATFORM_ENVIRONMENT: environment_name,
                ENV_ARTIFACT_BUCKET: platform.artifact_bucket,
                "POWERTOOLS_SERVICE_NAME": "mlops-dag-trigger",
                "POWERTOOLS_LOG_LEVEL": "INFO",
            },
        )
        skip_checks(
            self.function,
            {
                "CKV_AWS_116": "Invoked synchronously by CI, which sees the error and fails the job; a drift "
                "alarm's asynchronous invocation that still fails after Lambda's two retries raises the function's "
                "errors alarm (PlatformDashboard), and the next drift check alarms again: a dead-letter queue "
                "would hold nothing anyone reads.",
                "CKV_AWS_117": "Calls only the public MWAA API (airflow:InvokeRestApi, GetEnvironment): a VPC would "
                "add NAT or endpoint dependencies and cold-start time without reducing its exposure.",
                "CKV_AWS_173": "Its environment variables are the MWAA environment name and Powertools settings, no "
                "secret; Lambda encrypts them at rest with its service key.",
            },
        )
        # CDK adds DependsOn on the role although Role: GetAtt already orders them (cfn-lint
        # W3005); the dependency on the role's policy stays.
        policy = self.role.node.find_child("DefaultPolicy").node.default_child
        self.function.node.default_child.add_override("DependsOn", [stack.get_logical_id(policy)])

    @property
    def function_arn(self) -> str:
        return self.function.function_arn

    def add_project(self, project: str) -> lambda_.Alias:
        """The project's alias (named after it, on the current version) with an IAM-authorized URL."""
        validate_name("project", project)
        if project.isdigit():  # Lambda reads an all-digit qualifier as a version number
            raise ValueError(f"project={project!r} cannot name a Lambda alias: use a name with a letter")
        if project not in self.project_aliases:
            alias = lambda_.Alias(self, f"Alias-{project}", alias_name=project, version=self.function.current_version)
            self.project_aliases[project] = alias
            self.project_urls[project] = alias.add_function_url(auth_type=lambda_.FunctionUrlAuthType.AWS_IAM)
            if self.drift_topic_key is not None:
                self._drift_topic(project, alias)
        return self.project_aliases[project]

    def _drift_topic(self, project: str, alias: lambda_.Alias) -> sns.Topic:
        """The project's drift topic: CloudWatch publishes for the project's drift alarms only, and
        only the project's alias is invoked, only from this topic."""
        stack = Stack.of(self)
        topic = sns.Topic(
            self,
            f"DriftTopic-{project}",
            topic_name=self.platform_names.drift_topic(project),
            master_key=self.drift_topic_key,
            enforce_ssl=True,
        )
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="ProjectDriftAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": stack.format_arn(
                            service="cloudwatch",
                            resource="alarm",
                            # Names are words joined by single hyphens: "--" ends the project's name.
                            resource_name=names.drift_alarm_name(self.environment_name, project, "*"),
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    },
                },
            )
        )
        # AWS::SNS::Subscription plus AWS::Lambda::Permission (sns.amazonaws.com, SourceArn = topic).
        topic.add_subscription(subscriptions.LambdaSubscription(alias))
        # The summaries the drift path reads (names.drift_summary_uri of any model of the project:
        # the model's segment as a wildcard), decrypted through S3 only.
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[
                    f"arn:{stack.partition}:s3:::{self.platform_names.artifact_bucket}/"
                    + names.drift_summary_uri("b", project, "m").removeprefix("s3://b/").replace("/m/", "/*/", 1)
                ],
            )
        )
        acknowledge_wildcards(
            self.role,
            [f"Resource::arn:*:s3:::{self.platform_names.artifact_bucket}/{project}/*/monitoring/latest-check.json"],
            "The drift summary of every model of the project (models are not known to the platform stack): one "
            "object name per model under the project's prefix, read when the project's drift alarm fires.",
        )
        if not self.drift_topics:
            self.role.add_to_policy(
                iam.PolicyStatement(
                    actions=["kms:Decrypt"],
                    resources=[self.drift_topic_key.key_arn],
                    conditions={"StringEquals": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"}},
                )
            )
        self.drift_topics[project] = topic
        return topic
