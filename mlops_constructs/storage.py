"""S3 buckets with the platform's security defaults."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from mlops_constructs._checkov import skip_checks
from mlops_constructs._nag import acknowledge


class AccessLogsBucket(s3.Bucket):
    """Target of S3 server access logs.

    S3 log delivery cannot write to SSE-KMS buckets, so this one alone uses S3-managed keys.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        bucket_name: str | None = None,
        retention: Duration = Duration.days(365),
    ) -> None:
        super().__init__(
            scope,
            id,
            bucket_name=bucket_name,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=retention,
                    noncurrent_version_expiration=Duration.days(30),
                ),
                s3.LifecycleRule(
                    id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=Duration.days(7)
                ),
            ],
        )
        reason = "This is the access-log target bucket; logging it to itself would loop."
        acknowledge(self, {"AwsSolutions-S1": reason})
        skip_checks(self, {"CKV_AWS_18": reason})


class SecureBucket(s3.Bucket):
    """KMS-encrypted, versioned, SSL-only, private, access-logged bucket retained on deletion.

    ``cdk destroy`` never deletes data: buckets are retained on stack deletion and replacement
    and must be emptied and deleted by hand if that is really wanted. Only the rollback of the
    deploy that created the bucket removes it (CloudFormation's ``RetainExceptOnCreate``), so a
    retried first deploy does not fail on the bucket's fixed name; CloudFormation cannot delete a
    bucket that already holds objects, though, and then leaves it behind.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        bucket_name: str | None = None,
        encryption_key: kms.IKey,
        access_logs_bucket: s3.IBucket,
        noncurrent_version_retention: Duration = Duration.days(90),
        infrequent_access_after: Duration | None = Duration.days(90),
        extra_lifecycle_rules: Sequence[s3.LifecycleRule] = (),
    ) -> None:
        transitions = (
            [
                s3.Transition(
                    storage_class=s3.StorageClass.INTELLIGENT_TIERING,
                    transition_after=infrequent_access_after,
                )
            ]
            if infrequent_access_after
            else None
        )
        super().__init__(
            scope,
            id,
            bucket_name=bucket_name,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=encryption_key,
            bucket_key_enabled=True,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
            server_access_logs_bucket=access_logs_bucket,
            server_access_logs_prefix=f"{id.lower()}/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="tiering-and-old-versions",
                    transitions=transitions,
                    noncurrent_version_expiration=noncurrent_version_retention,
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                ),
                *extra_lifecycle_rules,
            ],
        )
