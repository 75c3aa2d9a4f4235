"""The ECR repository of one model's training+inference image."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from mlops_core import names


class ModelRepository(Construct):
    """ECR ``<project>/<model>``: scan on push, immutable tags, KMS, lifecycle rules.

    Tags are immutable so a semantic version always means the same image; untagged layers and old
    pre-release/CI images expire, release versions are kept (a serving model must stay pullable).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        project: str,
        model: str,
        encryption_key: kms.IKey | None = None,
        max_prerelease_images: int = 20,
    ) -> None:
        super().__init__(scope, id)
        self.repository = ecr.Repository(
            self,
            "Repository",
            repository_name=names.ecr_repository_name(project, model),
            image_scan_on_push=True,
            image_tag_mutability=ecr.TagMutability.IMMUTABLE,
            # KMS always; the AWS-managed ECR key unless a customer key is given (a customer key
            # also needs kms:CreateGrant for whoever creates the repository).
            encryption=ecr.RepositoryEncryption.KMS,
            encryption_key=encryption_key,
            # Kept on stack deletion (a serving model must stay pullable); a failed first create
            # removes the still-empty repository, so a retry does not hit its fixed name.
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
            lifecycle_rules=[
                ecr.LifecycleRule(
                    rule_priority=1,
                    description="Expire untagged images",
                    tag_status=ecr.TagStatus.UNTAGGED,
                    max_image_count=1,
                ),
                ecr.LifecycleRule(
                    rule_priority=2,
                    description="Keep the newest pre-release/CI images",
                    tag_status=ecr.TagStatus.TAGGED,
                    tag_pattern_list=["*-*"],
                    max_image_count=max_prerelease_images,
                ),
            ],
        )

    def grant_pull(self, grantee: iam.IGrantable) -> iam.Grant:
        return self.repository.grant_pull(grantee)

    def grant_push(self, grantee: iam.IGrantable) -> iam.Grant:
        return self.repository.grant_pull_push(grantee)
