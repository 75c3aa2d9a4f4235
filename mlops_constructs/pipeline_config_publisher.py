"""Publishes one model's ``pipeline.json`` into the MWAA bucket, able to write that one object only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import custom_resources as cr
from constructs import Construct

from mlops_core import names
from mlops_core.platform_names import PlatformNames


def publisher_role_name(platform: PlatformNames, project: str, model: str) -> str:
    # IAM role names are limited to 64 characters; a model stem is at most 29.
    return f"mlops-{platform.environment}-{names.model_stem(project, model)}-publish"


class PipelineConfigPublisher(Construct):
    """Writes ``dags/pipelines/<project>/<model>/pipeline.json`` into the Airflow bucket on every
    deploy that changes it, and deletes it when the model leaves the app (so the retraining DAG
    stops retraining it).

    Not a ``BucketDeployment``: its handler is one Lambda per stack whose role the CDK grants read
    and write on the whole destination bucket, so any model stack could rewrite ``startup.sh``,
    ``plugins.zip`` or the DAGs, code that runs as the MWAA execution role. Here the CDK's
    ``AwsCustomResource`` provider (also one per stack) holds no S3 permission at all: for each call
    it assumes this model's publisher role, which may put and delete this one object and encrypt it
    with the platform key through S3, nothing else.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        platform: PlatformNames,
        key: kms.IKey,
        project: str,
        model: str,
        document: Mapping[str, Any],
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        self.bucket_name = platform.airflow_bucket
        self.object_key = f"dags/{names.pipeline_config_path(project, model)}"
        self.role_name = publisher_role_name(platform, project, model)
        role_arn = f"arn:{stack.partition}:iam::{stack.account}:role/{self.role_name}"
        location = {"Bucket": self.bucket_name, "Key": self.object_key}
        put = cr.AwsSdkCall(
            service="S3",
            action="putObject",
            # to_json_string keeps the deploy-time values (role, repository and key ARNs) valid JSON.
            parameters={**location, "Body": stack.to_json_string(dict(document)), "ContentType": "application/json"},
            physical_resource_id=cr.PhysicalResourceId.of(f"s3://{self.bucket_name}/{self.object_key}"),
            assumed_role_arn=role_arn,
            output_paths=["ETag"],
        )
        self.resource = cr.AwsCustomResource(
            self,
            "Resource",
            on_create=put,
            on_update=put,
            on_delete=cr.AwsSdkCall(
                service="S3", action="deleteObject", parameters=location, assumed_role_arn=role_arn
            ),
            install_latest_aws_sdk=False,
            # Given no statements, the provider is granted sts:AssumeRole on the calls' role only.
            policy=cr.AwsCustomResourcePolicy.from_sdk_calls(resources=[role_arn]),
        )
        bucket_arn = f"arn:{stack.partition}:s3:::{self.bucket_name}"
        self.role = iam.Role(
            self,
            "Role",
            role_name=self.role_name,
            assumed_by=self.resource.grant_principal,
            description=f"Publishes {self.object_key} into {self.bucket_name}, nothing else",
            inline_policies={
                "PublishPipelineConfig": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            actions=["s3:PutObject", "s3:DeleteObject"],
                            resources=[f"{bucket_arn}/{self.object_key}"],
                        ),
                        # The bucket is SSE-KMS with the platform key: S3 asks KMS for a data key
                        # as the caller of PutObject.
                        iam.PolicyStatement(
                            actions=["kms:GenerateDataKey"],
                            resources=[key.key_arn],
                            conditions={"StringEquals": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"}},
                        ),
                    ]
                )
            },
        )
        # The role's ARN is built from its name (the calls need it before the role exists), so
        # CloudFormation must be told to create the role first.
        self.resource.node.add_dependency(self.role)
