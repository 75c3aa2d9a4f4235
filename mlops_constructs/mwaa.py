"""Amazon MWAA environment whose DAGs, plugins and requirements come from ``dag_assets/``."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_mwaa as mwaa
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from aws_cdk import custom_resources as cr
from constructs import Construct

from mlops_constructs._nag import (
    acknowledge_cdk_handlers,
    acknowledge_deployment_destination,
    acknowledge_wildcards,
    bucket_objects_pattern,
)
from mlops_constructs.dag_bundle import DEFAULT_DAG_ASSETS, SUPPORTED_AIRFLOW_VERSIONS, stage_bundle
from mlops_constructs.storage import SecureBucket
from mlops_core import names

ENVIRONMENT_PREFIX = "environment"
LOG_TYPES = ("DAGProcessing", "Scheduler", "Task", "WebServer", "Worker")


def mwaa_log_group_name(environment_name: str, log_type: str) -> str:
    """The log group MWAA writes one log type of an environment to."""
    return f"airflow-{environment_name}-{log_type}"


class MwaaEnvironment(Construct):
    """MWAA with a least-privilege execution role, private web server and pinned object versions.

    ``requirements.txt``, ``plugins.zip`` and ``startup.sh`` are referenced by S3 object version:
    MWAA only reinstalls them when the version on the environment changes, so pinning is what makes
    a change in ``dag_assets/`` actually roll out (and an unchanged bundle leaves MWAA alone). DAG
    files under ``dags/`` are synced by MWAA continuously and need no pin.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        environment_name: str,
        bucket_name: str | None = None,
        vpc: ec2.IVpc,
        subnets: list[ec2.ISubnet],
        key: kms.IKey,
        access_logs_bucket: s3.IBucket,
        airflow_version: str = "3.3.1",
        environment_class: str = "mw1.small",
        min_workers: int = 1,
        max_workers: int = 2,
        webserver_access_mode: str = "PRIVATE_ONLY",
        log_level: str = "INFO",
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
        dag_assets: Path = DEFAULT_DAG_ASSETS,
        airflow_configuration: dict[str, str] | None = None,
    ) -> None:
        super().__init__(scope, id)
        if airflow_version not in SUPPORTED_AIRFLOW_VERSIONS:
            raise ValueError(
                f"airflow_version={airflow_version!r} is not supported; use one of {SUPPORTED_AIRFLOW_VERSIONS}"
            )
        if len(subnets) != 2:
            raise ValueError(f"MWAA needs exactly two private subnets in different AZs, got {len(subnets)}")
        stack = Stack.of(self)
        self.environment_name = environment_name
        self.airflow_version = airflow_version
        self.arn = stack.format_arn(service="airflow", resource="environment", resource_name=environment_name)

        self.bucket = SecureBucket(
            self, "Bucket", bucket_name=bucket_name, encryption_key=key, access_logs_bucket=access_logs_bucket
        )

        bundle = stage_bundle(dag_assets=dag_assets, airflow_version=airflow_version)
        dags = s3deploy.BucketDeployment(
            self,
            "Dags",
            destination_bucket=self.bucket,
            destination_key_prefix="dags/",
            sources=[s3deploy.Source.asset(str(bundle.dags_dir))],
            # Model pipelines publish their configuration under dags/pipelines/ from their own stacks.
            exclude=[f"{names.PIPELINE_CONFIG_DIR}/*"],
            prune=True,
            retain_on_delete=True,
        )
        # One deployment per file: a deployment re-uploads every file of its asset, so a shared
        # one would turn the pinned version of an unchanged file into a noncurrent version, which
        # the bucket's lifecycle later deletes under the running environment.
        versions = {}
        for name, path in bundle.environment_files.items():
            deployment = s3deploy.BucketDeployment(
                self,
                f"EnvironmentFile-{name}",
                destination_bucket=self.bucket,
                destination_key_prefix=f"{ENVIRONMENT_PREFIX}/",
                sources=[s3deploy.Source.asset(str(path.parent))],
                prune=False,
                retain_on_delete=True,
            )
            versions[name] = self._object_version(name, bundle.hashes[name], deployment)

        self.role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.CompositePrincipal(
                iam.ServicePrincipal("airflow.amazonaws.com"),
                iam.ServicePrincipal("airflow-env.amazonaws.com"),
            ),
            description=f"MWAA {environment_name} execution role",
        )
        self._grant_airflow_runtime(key)

        self.security_group = ec2.SecurityGroup(
            self, "SecurityGroup", vpc=vpc, description=f"MWAA {environment_name}", allow_all_outbound=True
        )
        # MWAA's web server, scheduler and workers talk to each other inside this group only.
        self.security_group.add_ingress_rule(self.security_group, ec2.Port.all_traffic(), "MWAA components")

        module_logging = mwaa.CfnEnvironment.ModuleLoggingConfigurationProperty(enabled=True, log_level=log_level)
        log_configuration = mwaa.CfnEnvironment.LoggingConfigurationProperty(
            dag_processing_logs=module_logging,
            scheduler_logs=module_logging,
            task_logs=module_logging,
            webserver_logs=module_logging,
            worker_logs=module_logging,
        )
        # MWAA writes into airflow-<environment>-<type> and uses a group that already exists; left to
        # itself it creates them without expiry and without the customer key. Created here first,
        # with the platform key and a retention (the key policy lets CloudWatch Logs use the key for
        # this account's log groups, as MWAA's customer-managed-key documentation requires).
        self.log_groups = [mwaa_log_group_name(environment_name, log_type) for log_type in LOG_TYPES]
        log_groups = [
            logs.LogGroup(
                self,
                f"{log_type}Logs",
                log_group_name=name,
                retention=log_retention,
                encryption_key=key,
                removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
            )
            for log_type, name in zip(LOG_TYPES, self.log_groups, strict=True)
        ]

        self.environment = mwaa.CfnEnvironment(
            self,
            "Environment",
            name=environment_name,
            airflow_version=airflow_version,
            environment_class=environment_class,
            min_workers=min_workers,
            max_workers=max_workers,
            execution_role_arn=self.role.role_arn,
            kms_key=key.key_arn,
            source_bucket_arn=self.bucket.bucket_arn,
            dag_s3_path="dags",
            requirements_s3_path=f"{ENVIRONMENT_PREFIX}/requirements.txt",
            requirements_s3_object_version=versions["requirements.txt"],
            plugins_s3_path=f"{ENVIRONMENT_PREFIX}/plugins.zip",
            plugins_s3_object_version=versions["plugins.zip"],
            startup_script_s3_path=f"{ENVIRONMENT_PREFIX}/startup.sh" if "startup.sh" in versions else None,
            startup_script_s3_object_version=versions.get("startup.sh"),
            webserver_access_mode=webserver_access_mode,
            network_configuration=mwaa.CfnEnvironment.NetworkConfigurationProperty(
                security_group_ids=[self.security_group.security_group_id],
                subnet_ids=[subnet.subnet_id for subnet in subnets],
            ),
            logging_configuration=log_configuration,
            airflow_configuration_options={
                "core.load_examples": "false",
                "core.dags_are_paused_at_creation": "false",
                **(airflow_configuration or {}),
            },
        )
        self.environment.node.add_dependency(dags)
        for group in log_groups:
            self.environment.node.add_dependency(group)
        self.environment.node.add_dependency(self.role)
        acknowledge_deployment_destination(dags, self.bucket)
        acknowledge_cdk_handlers(stack)

    def _object_version(self, file_name: str, digest: str, deployment: s3deploy.BucketDeployment) -> str:
        key = f"{ENVIRONMENT_PREFIX}/{file_name}"
        call = cr.AwsSdkCall(
            service="S3",
            action="headObject",
            parameters={"Bucket": self.bucket.bucket_name, "Key": key},
            # A new digest means new content: read the version again, which updates MWAA.
            physical_resource_id=cr.PhysicalResourceId.of(f"{key}@{digest[:16]}"),
            output_paths=["VersionId"],
        )
        lookup = cr.AwsCustomResource(
            self,
            f"Version-{file_name}",
            on_create=call,
            on_update=call,
            install_latest_aws_sdk=False,
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [
                    iam.PolicyStatement(
                        actions=["s3:GetObject", "s3:GetObjectVersion"],
                        resources=[self.bucket.arn_for_objects(key)],
                    )
                ]
            ),
        )
        lookup.node.add_dependency(deployment)
        return lookup.get_response_field("VersionId")

    def _grant_airflow_runtime(self, key: kms.IKey) -> None:
        """What MWAA itself needs (per the MWAA execution-role documentation), scoped to this
        environment's bucket, log groups, Celery queues and key."""
        stack = Stack.of(self)
        region, account = stack.region, stack.account
        statements = [
            iam.PolicyStatement(actions=["airflow:PublishMetrics"], resources=[self.arn]),
            iam.PolicyStatement(
                effect=iam.Effect.DENY,
                actions=["s3:ListAllMyBuckets"],
                resources=[self.bucket.bucket_arn, self.bucket.arn_for_objects("*")],
            ),
            iam.PolicyStatement(
                actions=["s3:GetObject*", "s3:GetBucket*", "s3:List*"],
                resources=[self.bucket.bucket_arn, self.bucket.arn_for_objects("*")],
            ),
            iam.PolicyStatement(
                actions=[
                    "logs:CreateLogStream",
                    "logs:CreateLogGroup",
                    "logs:PutLogEvents",
                    "logs:GetLogEvents",
                    "logs:GetLogRecord",
                    "logs:GetLogGroupFields",
                    "logs:GetQueryResults",
                ],
                resources=[
                    f"arn:{stack.partition}:logs:{region}:{account}:log-group:airflow-{self.environment_name}-*"
                ],
            ),
            iam.PolicyStatement(actions=["logs:DescribeLogGroups", "s3:GetAccountPublicAccessBlock"], resources=["*"]),
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
            ),
            iam.PolicyStatement(
                actions=[
                    "sqs:ChangeMessageVisibility",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    "sqs:GetQueueUrl",
                    "sqs:ReceiveMessage",
                    "sqs:SendMessage",
                ],
                resources=[f"arn:{stack.partition}:sqs:{region}:*:airflow-celery-*"],
            ),
            iam.PolicyStatement(
                actions=["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey*", "kms:Encrypt"],
                resources=[key.key_arn],
                conditions={
                    "StringLike": {"kms:ViaService": [f"sqs.{region}.amazonaws.com", f"s3.{region}.amazonaws.com"]}
                },
            ),
        ]
        for statement in statements:
            self.role.add_to_policy(statement)
        acknowledge_wildcards(
            self.role,
            [
                "Action::s3:GetObject*",
                "Action::s3:GetBucket*",
                "Action::s3:List*",
                "Action::kms:GenerateDataKey*",
                bucket_objects_pattern(self.bucket),
                f"Resource::arn:*:logs:*:log-group:airflow-{self.environment_name}-*",
                "Resource::arn:*:sqs:*:airflow-celery-*",
                "Resource::[*]",
            ],
            "MWAA's documented execution-role policy: objects of its own bucket, its own log groups "
            "(airflow-<env>-*), the service-owned Celery queues (airflow-celery-*), and "
            "DescribeLogGroups/PutMetricData/GetAccountPublicAccessBlock, which take no resource ARN.",
        )

    def grant_create_cli_token(self, grantee: iam.IGrantable) -> iam.Grant:
        return iam.Grant.add_to_principal(grantee=grantee, actions=["airflow:CreateCliToken"], resource_arns=[self.arn])

    def grant_invoke_rest_api(self, grantee: iam.IGrantable) -> iam.Grant:
        return iam.Grant.add_to_principal(grantee=grantee, actions=["airflow:InvokeRestApi"], resource_arns=[self.arn])
