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

    Tags are immutable so a semantic version always means the same image. Release images are
    pushed straight under their version (``mlops image release``), so they carry no other tag a
    lifecycle rule could select them by, and they are never expired (a serving model, and any
    version it may roll back to, must stay pullable). Only untagged images expire: a manifest
    left without tags, e.g. by an interrupted push.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        project: str,
        model: str,
        encryption_key: kms.IKey | None = None,
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
            # One rule on untagged images: ECR selects an image for a tagged rule if any of its
            # tags matches, so a rule on some tag pattern could reach a release image through a
            # second tag. No tagged rule at all, so no release image is ever selected.
            lifecycle_rules=[
                ecr.LifecycleRule(
                    rule_priority=1,
                    description="Expire untagged images (never a released version)",
                    tag_status=ecr.TagStatus.UNTAGGED,
                    max_image_count=1,
                ),
            ],
        )

    def grant_pull(self, grantee: iam.IGrantable) -> iam.Grant:
        return self.repository.grant_pull(grantee)

    def grant_push(self, grantee: iam.IGrantable) -> iam.Grant:
        return self.repository.grant_pull_push(grantee)
