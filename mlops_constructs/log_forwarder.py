"""Forward CloudWatch Logs (MWAA, Lambda, SageMaker endpoints) to an HTTP endpoint through Firehose.

CloudWatch Logs subscription filter -> Firehose delivery stream (``PlatformNames.log_delivery_stream``)
-> HTTP endpoint (Wavefront or any Firehose HTTP endpoint destination). Records the endpoint does
not accept after the retry window land in an encrypted S3 bucket, so no log line is lost silently.

Model-pipeline stacks (other stacks, other CDK apps) subscribe their log groups with
``LogForwarder.subscribe``, which needs only the naming convention: the stream and the role that
CloudWatch Logs assumes have fixed names, so no CloudFormation export couples the stacks.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from mlops_constructs._nag import acknowledge
from mlops_core.platform_names import PlatformNames

DELIVERY_LOG_STREAM = "HttpEndpointDelivery"
DEFAULT_FAILED_RECORDS_RETENTION = Duration.days(90)
DEFAULT_BUFFERING_INTERVAL = Duration.seconds(60)
DEFAULT_RETRY_DURATION = Duration.minutes(5)
BACKUP_LOG_STREAM = "S3Backup"


def delivery_stream_arn(names: PlatformNames, partition: str = "aws") -> str:
    return f"arn:{partition}:firehose:{names.region}:{names.account}:deliverystream/{names.log_delivery_stream}"


def logs_to_firehose_role_arn(names: PlatformNames, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{names.account}:role/{names.logs_to_firehose_role}"


def delivery_error_log_group_name(names: PlatformNames) -> str:
    # The prefix Firehose's console uses, so operators find delivery errors where they expect them.
    return f"/aws/kinesisfirehose/{names.log_delivery_stream}"


def _default_policy(role: iam.Role) -> iam.Policy:
    """The inline policy CDK attaches to a role (depending on the role alone is implicit via GetAtt)."""
    policy = role.node.try_find_child("DefaultPolicy")
    if policy is None:
        raise ValueError(f"role {role.node.path} has no policy yet")
    return policy


class LogForwarder(Construct):
    """Firehose delivery stream to an HTTP endpoint, its failed-records bucket and the role
    CloudWatch Logs uses to write into it."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        names: PlatformNames,
        destination_url: str,
        destination_name: str,
        access_key_secret_name: str | None,
        key: kms.IKey,
        failed_records_retention: Duration = DEFAULT_FAILED_RECORDS_RETENTION,
        access_logs_bucket: s3.IBucket | None = None,
        delivery_error_log_retention: logs.RetentionDays = logs.RetentionDays.ONE_YEAR,
        buffering_interval: Duration = DEFAULT_BUFFERING_INTERVAL,
        buffering_size_mib: int = 1,
        retry_duration: Duration = DEFAULT_RETRY_DURATION,
    ) -> None:
        super().__init__(scope, id)
        if not destination_url.startswith("https://"):
            # Firehose HTTP endpoint destinations only accept HTTPS; fail at synth, not at deploy.
            raise ValueError(f"destination_url={destination_url!r} must be an https:// URL")
        if not 1 <= buffering_size_mib <= 64:
            raise ValueError(f"buffering_size_mib={buffering_size_mib} must be between 1 and 64")
        stack = Stack.of(self)
        self.names = names
        self.delivery_stream_name = names.log_delivery_stream

        self.failed_records_bucket = s3.Bucket(
            self,
            "FailedRecords",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            # Undelivered logs may be the only copy of an incident's evidence: never deleted by a stack
            # (only by the rollback of the deploy that created it, before any record arrived).
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
            server_access_logs_bucket=access_logs_bucket,
            server_access_logs_prefix="log-forwarder-failed-records/" if access_logs_bucket else None,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-failed-records",
                    expiration=failed_records_retention,
                    noncurrent_version_expiration=Duration.days(7),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
        )
        if access_logs_bucket is None:
            acknowledge(
                self.failed_records_bucket,
                {
                    "AwsSolutions-S1": "The caller passed no access-log bucket (the platform stack "
                    "does); only Firehose's delivery role writes to this bucket and no user reads it "
                    "through S3 routinely. Pass access_logs_bucket to turn server access logs on.",
                },
            )

        self.delivery_error_log_group = logs.LogGroup(
            self,
            "DeliveryErrors",
            log_group_name=delivery_error_log_group_name(names),
            retention=delivery_error_log_retention,
            encryption_key=key,
            # Fixed name: kept on delete, removed by the rollback of a failed first create.
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )
        # CloudWatch Logs encrypts with the key only if the key policy lets the regional logs service
        # use it for this log group (no effect on an imported key: its policy is managed elsewhere).
        key.add_to_resource_policy(
            iam.PolicyStatement(
                actions=[
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                principals=[iam.ServicePrincipal(f"logs.{names.region}.amazonaws.com")],
                resources=["*"],
                conditions={
                    "ArnEquals": {
                        "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
                            service="logs",
                            resource="log-group",
                            resource_name=delivery_error_log_group_name(names),
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    }
                },
            )
        )
        for stream_id, stream_name in (
            ("DeliveryLogStream", DELIVERY_LOG_STREAM),
            ("BackupLogStream", BACKUP_LOG_STREAM),
        ):
            logs.LogStream(
                self,
                stream_id,
                log_group=self.delivery_error_log_group,
                log_stream_name=stream_name,
                removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
            )

        # Role Firehose uses to write failed records, log delivery errors and read the access key.
        self.delivery_role = iam.Role(
            self,
            "DeliveryRole",
            assumed_by=iam.ServicePrincipal(
                "firehose.amazonaws.com",
                conditions={
                    # Confused-deputy protection as Firehose documents it: Firehose passes the stream's
                    # account as the external id, so other accounts' streams cannot assume this role.
                    "StringEquals": {"sts:ExternalId": names.account},
                },
            ),
            description=f"Firehose {names.log_delivery_stream}: failed records to S3, errors to CloudWatch Logs",
        )
        bucket = self.failed_records_bucket
        self.delivery_role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
                resources=[bucket.bucket_arn],
            )
        )
        self.delivery_role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
                resources=[bucket.arn_for_objects("*")],
            )
        )
        self.delivery_role.add_to_policy(
            iam.PolicyStatement(
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[key.key_arn],
                # Only for S3 objects of this bucket (bucket keys use the bucket ARN as context).
                conditions={
                    "StringEquals": {"kms:ViaService": f"s3.{names.region}.amazonaws.com"},
                    "StringLike": {
                        "kms:EncryptionContext:aws:s3:arn": [bucket.bucket_arn, bucket.arn_for_objects("*")]
                    },
                },
            )
        )
        self.delivery_role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:PutLogEvents"],
                resources=[
                    stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name=f"{delivery_error_log_group_name(names)}:log-stream:{stream}",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                    for stream in (DELIVERY_LOG_STREAM, BACKUP_LOG_STREAM)
                ],
            )
        )

        secrets_configuration = None
        self.access_key_secret: secretsmanager.ISecret | None = None
        if access_key_secret_name is not None:
            self.access_key_secret = secretsmanager.Secret.from_secret_name_v2(
                self, "AccessKeySecret", access_key_secret_name
            )
            # Grants on "<name>-??????": the secret's random suffix is unknown when only its name is,
            # and "??????" matches exactly that one secret. Firehose reads the HTTP endpoint's access
            # key from the secret's JSON field "api_key".
            self.access_key_secret.grant_read(self.delivery_role)
            secrets_configuration = firehose.CfnDeliveryStream.SecretsManagerConfigurationProperty(
                enabled=True,
                secret_arn=self.access_key_secret.secret_arn,
                role_arn=self.delivery_role.role_arn,
            )
        acknowledge(
            self.delivery_role,
            {
                f"AwsSolutions-IAM5[Resource::<{stack.get_logical_id(bucket.node.default_child)}.Arn>/*]": (
                    "Firehose writes failed records under generated date-based keys inside this one bucket."
                ),
            },
        )

        self.delivery_stream = firehose.CfnDeliveryStream(
            self,
            "DeliveryStream",
            delivery_stream_name=names.log_delivery_stream,
            delivery_stream_type="DirectPut",
            delivery_stream_encryption_configuration_input=(
                firehose.CfnDeliveryStream.DeliveryStreamEncryptionConfigurationInputProperty(
                    key_type="CUSTOMER_MANAGED_CMK",
                    key_arn=key.key_arn,
                )
            ),
            http_endpoint_destination_configuration=firehose.CfnDeliveryStream.HttpEndpointDestinationConfigurationProperty(
                endpoint_configuration=firehose.CfnDeliveryStream.HttpEndpointConfigurationProperty(
                    url=destination_url,
                    name=destination_name,
                ),
                secrets_manager_configuration=secrets_configuration,
                request_configuration=firehose.CfnDeliveryStream.HttpEndpointRequestConfigurationProperty(
                    # CloudWatch Logs payloads are already gzip-compressed JSON; GZIP keeps the
                    # request small and is what HTTP log collectors expect.
                    content_encoding="GZIP",
                    common_attributes=[
                        firehose.CfnDeliveryStream.HttpEndpointCommonAttributeProperty(
                            attribute_name="environment",
                            attribute_value=names.environment,
                        )
                    ],
                ),
                buffering_hints=firehose.CfnDeliveryStream.BufferingHintsProperty(
                    interval_in_seconds=int(buffering_interval.to_seconds()),
                    size_in_m_bs=buffering_size_mib,
                ),
                retry_options=firehose.CfnDeliveryStream.RetryOptionsProperty(
                    duration_in_seconds=int(retry_duration.to_seconds()),
                ),
                role_arn=self.delivery_role.role_arn,
                s3_backup_mode="FailedDataOnly",
                s3_configuration=firehose.CfnDeliveryStream.S3DestinationConfigurationProperty(
                    bucket_arn=bucket.bucket_arn,
                    role_arn=self.delivery_role.role_arn,
                    prefix="failed/",
                    error_output_prefix="errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/",
                    compression_format="GZIP",
                    encryption_configuration=firehose.CfnDeliveryStream.EncryptionConfigurationProperty(
                        kms_encryption_config=firehose.CfnDeliveryStream.KMSEncryptionConfigProperty(
                            awskms_key_arn=key.key_arn,
                        )
                    ),
                    cloud_watch_logging_options=firehose.CfnDeliveryStream.CloudWatchLoggingOptionsProperty(
                        enabled=True,
                        log_group_name=self.delivery_error_log_group.log_group_name,
                        log_stream_name=BACKUP_LOG_STREAM,
                    ),
                ),
                cloud_watch_logging_options=firehose.CfnDeliveryStream.CloudWatchLoggingOptionsProperty(
                    enabled=True,
                    log_group_name=self.delivery_error_log_group.log_group_name,
                    log_stream_name=DELIVERY_LOG_STREAM,
                ),
            ),
        )
        # Firehose validates access to the bucket and secret when the stream is created.
        self.delivery_stream.node.add_dependency(_default_policy(self.delivery_role))
        self.delivery_stream_arn: str = self.delivery_stream.attr_arn

        # Role CloudWatch Logs assumes to put subscription records into the stream.
        self.logs_role = iam.Role(
            self,
            "LogsToFirehoseRole",
            role_name=names.logs_to_firehose_role,
            assumed_by=iam.ServicePrincipal(
                f"logs.{names.region}.amazonaws.com",
                conditions={
                    # Only this account's log groups may send through this role (confused deputy).
                    "StringLike": {"aws:SourceArn": f"arn:{stack.partition}:logs:{names.region}:{names.account}:*"},
                },
            ),
            description=f"CloudWatch Logs subscription filters -> Firehose {names.log_delivery_stream}",
        )
        self.logs_role.add_to_policy(
            iam.PolicyStatement(
                actions=["firehose:PutRecord", "firehose:PutRecordBatch"],
                resources=[self.delivery_stream_arn],
            )
        )

    def forward(
        self,
        log_group: logs.ILogGroup,
        *,
        id: str,
        filter_pattern: logs.IFilterPattern | None = None,
    ) -> logs.CfnSubscriptionFilter:
        """Subscribe a log group (in this stack) to the delivery stream; all events by default."""
        subscription = logs.CfnSubscriptionFilter(
            self,
            id,
            log_group_name=log_group.log_group_name,
            destination_arn=self.delivery_stream_arn,
            role_arn=self.logs_role.role_arn,
            filter_pattern=(filter_pattern or logs.FilterPattern.all_events()).log_pattern_string,
        )
        # CloudWatch Logs test-writes to the stream when the filter is created: the role's policy
        # must exist first.
        subscription.node.add_dependency(_default_policy(self.logs_role))
        return subscription

    @staticmethod
    def subscribe(
        scope: Construct,
        id: str,
        *,
        names: PlatformNames,
        log_group_name: str,
        filter_pattern: logs.IFilterPattern | None = None,
    ) -> logs.CfnSubscriptionFilter:
        """Subscribe a log group to the platform's stream from any stack or app, by naming convention.

        The platform stack of ``names.environment`` must be deployed first, and the log group must
        exist (create it in the same stack for endpoint logs, which SageMaker only creates later).
        """
        partition = Stack.of(scope).partition
        return logs.CfnSubscriptionFilter(
            scope,
            id,
            log_group_name=log_group_name,
            destination_arn=delivery_stream_arn(names, partition),
            role_arn=logs_to_firehose_role_arn(names, partition),
            filter_pattern=(filter_pattern or logs.FilterPattern.all_events()).log_pattern_string,
        )


__all__ = [
    "LogForwarder",
    "delivery_stream_arn",
    "logs_to_firehose_role_arn",
    "delivery_error_log_group_name",
]
