from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Match
from synth_helpers import new_stack, template_of

from mlops_constructs.storage import AccessLogsBucket, SecureBucket


def _secure_bucket_template():
    stack = new_stack()
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    logs = AccessLogsBucket(stack, "Logs")
    SecureBucket(stack, "Data", bucket_name="data-bucket", encryption_key=key, access_logs_bucket=logs)
    return template_of(stack)


def test_secure_bucket_is_kms_encrypted_versioned_private_and_logged():
    template = _secure_bucket_template()
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketName": "data-bucket",
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {
                        "ServerSideEncryptionByDefault": {
                            "SSEAlgorithm": "aws:kms",
                            "KMSMasterKeyID": Match.any_value(),
                        },
                        "BucketKeyEnabled": True,
                    }
                ]
            },
            "VersioningConfiguration": {"Status": "Enabled"},
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "LoggingConfiguration": {"DestinationBucketName": Match.any_value(), "LogFilePrefix": "data/"},
            "LifecycleConfiguration": {
                "Rules": Match.array_with([Match.object_like({"NoncurrentVersionExpiration": {"NoncurrentDays": 90}})])
            },
        },
    )


def test_buckets_survive_cdk_destroy_but_not_the_rollback_of_their_own_create():
    """RetainExceptOnCreate: retained when the stack is deleted or the bucket replaced, deleted when
    the deploy that created it rolls back, so a retried first deploy does not meet its fixed name
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-deletionpolicy.html)."""
    template = _secure_bucket_template()
    for bucket in template.find_resources("AWS::S3::Bucket").values():
        assert bucket["DeletionPolicy"] == "RetainExceptOnCreate"
        assert bucket["UpdateReplacePolicy"] == "Retain"


def test_secure_bucket_denies_plain_http():
    template = _secure_bucket_template()
    template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "s3:*",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            }
        },
    )


def test_access_log_bucket_uses_s3_managed_keys_because_log_delivery_cannot_use_kms():
    template = _secure_bucket_template()
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
            "LifecycleConfiguration": {"Rules": Match.array_with([Match.object_like({"ExpirationInDays": 365})])},
        },
    )
