"""What the pipeline DAGs may do from MWAA, scoped to the platform's named resources."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from mlops_constructs._nag import BUCKET_GRANT_ACTIONS, acknowledge_wildcards, bucket_objects_pattern
from mlops_constructs.encryption import key_grant_statement
from mlops_core.names import LINEAGE_NAME_PREFIX
from mlops_core.platform_names import PlatformNames

# What the Deployment DAG registers (dag_assets/dags/mlops_dags/deployment.py SCALABLE_DIMENSION).
SAGEMAKER_SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
AUTOSCALING_SERVICE_LINKED_ROLE = "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
SAGEMAKER_RESOURCE_TYPES = (
    "training-job",
    "processing-job",
    "model",
    "endpoint-config",
    "endpoint",
    "model-package-group",
    "model-package",
)


class PipelineOrchestrationPolicy(Construct):
    """Grants the MWAA execution role the SageMaker, S3, SNS, Secrets Manager and autoscaling
    calls the Training & Evaluation, Deployment and Retraining DAGs make."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        role: iam.IRole,
        names: PlatformNames,
        data_bucket: s3.IBucket,
        artifact_bucket: s3.IBucket,
        alerts_topic: sns.ITopic,
        slack_webhook_secret_name: str | None,
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        arn = f"arn:{stack.partition}"
        sagemaker_arns = [
            f"{arn}:sagemaker:{stack.region}:{stack.account}:{kind}/*" for kind in SAGEMAKER_RESOURCE_TYPES
        ]
        self.policy = iam.Policy(
            self,
            "Policy",
            statements=[
                iam.PolicyStatement(
                    sid="SageMakerPipelineResources",
                    actions=[
                        "sagemaker:CreateTrainingJob",
                        "sagemaker:DescribeTrainingJob",
                        "sagemaker:StopTrainingJob",
                        "sagemaker:CreateProcessingJob",
                        "sagemaker:DescribeProcessingJob",
                        "sagemaker:StopProcessingJob",
                        "sagemaker:CreateModel",
                        "sagemaker:DescribeModel",
                        "sagemaker:CreateEndpointConfig",
                        "sagemaker:DescribeEndpointConfig",
                        "sagemaker:CreateEndpoint",
                        "sagemaker:UpdateEndpoint",
                        # An A/B test shifts the traffic between its variants step by step.
                        "sagemaker:UpdateEndpointWeightsAndCapacities",
                        "sagemaker:DescribeEndpoint",
                        # A Failed first creation blocks the endpoint's name: the deployment
                        # deletes it before creating it again.
                        "sagemaker:DeleteEndpoint",
                        "sagemaker:InvokeEndpoint",
                        "sagemaker:CreateModelPackageGroup",
                        "sagemaker:DescribeModelPackageGroup",
                        "sagemaker:CreateModelPackage",
                        "sagemaker:DescribeModelPackage",
                        "sagemaker:UpdateModelPackage",
                        "sagemaker:AddTags",
                        "sagemaker:ListTags",
                    ],
                    resources=sagemaker_arns,
                ),
                iam.PolicyStatement(
                    sid="SageMakerListCalls",
                    actions=[
                        "sagemaker:ListModels",
                        "sagemaker:ListTrainingJobs",
                        "sagemaker:ListProcessingJobs",
                        "sagemaker:ListEndpoints",
                        "sagemaker:ListModelPackages",
                        "sagemaker:ListModelPackageGroups",
                    ],
                    resources=["*"],
                ),
                # ML Lineage Tracking (mlops_dags.lineage): actions and contexts carry the platform's
                # name prefix; an artifact's ARN is a hash of its source, so it takes no name.
                iam.PolicyStatement(
                    sid="LineageRecords",
                    actions=[
                        "sagemaker:CreateArtifact",
                        "sagemaker:DescribeArtifact",
                        "sagemaker:CreateAction",
                        "sagemaker:DescribeAction",
                        "sagemaker:CreateContext",
                        "sagemaker:DescribeContext",
                        "sagemaker:AddAssociation",
                    ],
                    resources=[
                        f"{arn}:sagemaker:{stack.region}:{stack.account}:artifact/*",
                        *(
                            f"{arn}:sagemaker:{stack.region}:{stack.account}:{kind}/{LINEAGE_NAME_PREFIX}*"
                            for kind in ("action", "context")
                        ),
                    ],
                ),
                iam.PolicyStatement(
                    sid="LineageLists",
                    actions=["sagemaker:ListArtifacts", "sagemaker:ListAssociations"],
                    resources=["*"],
                ),
                # The digest a run's image tag resolves to, for its lineage (the model repositories
                # are named <project>/<model>).
                iam.PolicyStatement(
                    sid="ImageDigests",
                    actions=["ecr:DescribeImages"],
                    resources=[f"{arn}:ecr:{stack.region}:{stack.account}:repository/*"],
                ),
                iam.PolicyStatement(
                    sid="PassModelRoles",
                    actions=["iam:PassRole"],
                    resources=[f"{arn}:iam::{stack.account}:role/{names.sagemaker_role('*')}"],
                    conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
                ),
                # Writes on a scalable target take no predictable ARN (its id is generated), so they are
                # scoped by the documented condition keys: SageMaker endpoint variants only
                # (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsapplicationautoscaling.html).
                iam.PolicyStatement(
                    sid="EndpointAutoscaling",
                    actions=[
                        "application-autoscaling:RegisterScalableTarget",
                        # An update changing the instance type of an autoscaled variant needs the
                        # target deregistered first (registered again after the update).
                        "application-autoscaling:DeregisterScalableTarget",
                        "application-autoscaling:PutScalingPolicy",
                    ],
                    resources=["*"],
                    conditions={
                        "StringEquals": {
                            "application-autoscaling:service-namespace": "sagemaker",
                            "application-autoscaling:scalable-dimension": SAGEMAKER_SCALABLE_DIMENSION,
                        }
                    },
                ),
                iam.PolicyStatement(
                    sid="EndpointAutoscalingReads",
                    actions=[
                        "application-autoscaling:DescribeScalableTargets",
                        "application-autoscaling:DescribeScalingPolicies",
                    ],
                    resources=["*"],
                ),
                iam.PolicyStatement(
                    sid="AutoscalingServiceLinkedRole",
                    actions=["iam:CreateServiceLinkedRole"],
                    resources=[
                        f"{arn}:iam::{stack.account}:role/aws-service-role/"
                        f"sagemaker.application-autoscaling.amazonaws.com/{AUTOSCALING_SERVICE_LINKED_ROLE}"
                    ],
                    conditions={
                        "StringLike": {"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"}
                    },
                ),
                # A shadow trial compares the endpoint's variants on their AWS/SageMaker metrics;
                # GetMetricData has no resource type nor condition key to scope it by (Service
                # Authorization Reference, Amazon CloudWatch): read-only, any metric.
                iam.PolicyStatement(
                    sid="EndpointVariantMetrics", actions=["cloudwatch:GetMetricData"], resources=["*"]
                ),
                # CreateEndpoint/UpdateEndpoint with an endpoint config that names a KmsKeyId: SageMaker
                # creates the volume grant as the caller.
                key_grant_statement(names, partition=stack.partition),
            ],
        )
        self.policy.attach_to_role(role)
        data_bucket.grant_read(role)
        artifact_bucket.grant_read_write(role)
        alerts_topic.grant_publish(role)
        if slack_webhook_secret_name:
            iam.Grant.add_to_principal(
                grantee=role,
                actions=["secretsmanager:GetSecretValue"],
                # Secrets Manager appends a random 6-character suffix to secret ARNs.
                resource_arns=[
                    f"{arn}:secretsmanager:{stack.region}:{stack.account}:secret:{slack_webhook_secret_name}-??????"
                ],
            )
        acknowledge_wildcards(
            self.policy,
            [
                *(f"Resource::arn:*:sagemaker:*:{kind}/*" for kind in SAGEMAKER_RESOURCE_TYPES),
                "Resource::arn:*:sagemaker:*:artifact/*",
                *(f"Resource::arn:*:sagemaker:*:{kind}/{LINEAGE_NAME_PREFIX}*" for kind in ("action", "context")),
                "Resource::arn:*:ecr:*:repository/*",
                f"Resource::arn:*:iam::*:role/{names.sagemaker_role('*')}",
                "Resource::arn:*:kms:*:key/*",
                "Resource::[*]",
            ],
            "SageMaker job/model/endpoint names are generated per run (mlops_core.names.RunName), so they are "
            "scoped by resource type in this account and region; SageMaker List*, CloudWatch GetMetricData "
            "and Application Auto Scaling calls take no resource ARN (its writes are conditioned on the "
            "SageMaker namespace and dimension); lineage actions and contexts carry the platform's name "
            "prefix, artifacts are named by a hash of their source; ecr:DescribeImages reads the digests of "
            "the model repositories' images; "
            "PassRole only reaches the platform's model roles (mlops-<env>-*-sm); kms:CreateGrant reaches the "
            "platform key by its alias, for AWS-resource grants only.",
        )
        acknowledge_wildcards(
            role,
            [
                *BUCKET_GRANT_ACTIONS,
                bucket_objects_pattern(data_bucket),
                bucket_objects_pattern(artifact_bucket),
            ],
            "The DAGs read training data and read/write run artifacts under keys generated per project, model "
            "and run (CDK's grant_read/grant_read_write on the platform's two buckets, with their KMS key).",
        )
