"""What the MWAA execution role may do for the DAGs, as AWS authorises the calls they make."""

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from iam_statements import covering, render, statements
from synth_helpers import new_stack, template_of

from mlops_constructs.orchestration_policy import PipelineOrchestrationPolicy
from mlops_core.platform_names import PlatformNames

NAMES = PlatformNames(environment="dev", account="111111111111", region="eu-west-1")
KEY_ARN = "arn:aws:kms:eu-west-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ENDPOINT_ARN = "arn:aws:sagemaker:eu-west-1:111111111111:endpoint/endpoint-security--pro-5faba3"
# Application Auto Scaling authorises writes on a scalable target, whose ARN carries a generated id.
SCALABLE_TARGET_ARN = "arn:aws:application-autoscaling:eu-west-1:111111111111:scalable-target/056f0e6e1e5a8b1c"


def _role_statements() -> list[dict]:
    stack = new_stack()
    PipelineOrchestrationPolicy(
        stack,
        "Pipeline",
        role=iam.Role(stack, "Mwaa", assumed_by=iam.ServicePrincipal("airflow-env.amazonaws.com")),
        names=NAMES,
        data_bucket=s3.Bucket.from_bucket_name(stack, "Data", NAMES.data_bucket),
        artifact_bucket=s3.Bucket.from_bucket_name(stack, "Artifacts", NAMES.artifact_bucket),
        alerts_topic=sns.Topic.from_topic_arn(stack, "Topic", NAMES.alerts_topic_arn),
        slack_webhook_secret_name=None,
    )
    return statements(template_of(stack).to_json())


def test_creating_an_endpoint_with_an_encrypted_volume_may_create_the_key_grant():
    """The Deployment DAG creates endpoint configs with KmsKeyId; CreateEndpoint/UpdateEndpoint then
    need kms:CreateGrant for the caller (SageMaker API permissions reference: "kms:CreateGrant
    (required only if the associated EndPointConfig has a KmsKeyId specified)")."""
    role = _role_statements()
    assert covering(role, "sagemaker:CreateEndpoint", ENDPOINT_ARN)
    grants = covering(role, "kms:CreateGrant", KEY_ARN)
    assert grants
    for grant in grants:
        assert grant["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}
        assert grant["Condition"]["ForAnyValue:StringEquals"] == {"kms:ResourceAliases": NAMES.kms_alias}


def test_a_failed_first_endpoint_may_be_deleted_before_it_is_created_again():
    assert covering(_role_statements(), "sagemaker:DeleteEndpoint", ENDPOINT_ARN)


def test_autoscaling_writes_reach_sagemaker_endpoint_variants_only():
    """Scalable targets have no predictable ARN; Application Auto Scaling's documented condition keys
    (service-namespace, scalable-dimension) are what scope the writes the Deployment DAG makes."""
    role = _role_statements()
    for action in (
        "application-autoscaling:RegisterScalableTarget",
        "application-autoscaling:PutScalingPolicy",
        "application-autoscaling:DeregisterScalableTarget",
    ):
        allowed = covering(role, action, SCALABLE_TARGET_ARN)
        assert allowed, action
        for statement in allowed:
            assert statement["Condition"] == {
                "StringEquals": {
                    "application-autoscaling:service-namespace": "sagemaker",
                    "application-autoscaling:scalable-dimension": "sagemaker:variant:DesiredInstanceCount",
                }
            }
    assert covering(role, "application-autoscaling:DescribeScalableTargets", "*")


def test_only_the_sagemaker_endpoint_autoscaling_service_linked_role_may_be_created():
    role = _role_statements()
    (statement,) = [s for s in role if s["Action"] == "iam:CreateServiceLinkedRole"]
    assert render(statement["Resource"]) == (
        "arn:aws:iam::111111111111:role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
        "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
    )
