"""Keyless CI: GitLab's OIDC ID tokens (``id_tokens:``) exchanged for short-lived AWS roles.

No access keys exist anywhere. Each role trusts the GitLab OIDC provider only for tokens whose
``aud`` is :data:`AUDIENCE` and whose ``sub`` names an allowed project path and protected ref:
``project_path:<group>/<repo>:ref_type:branch:ref:main``. GitLab only issues a token with a
protected ref's ``sub`` to a pipeline running for that ref, and only the users the branch's
protection allows can push to it or run pipelines on it (a multi-project trigger included).

Only ``aud`` and ``sub`` are evaluated: for an OIDC issuer such as a GitLab instance, AWS STS
offers no other claim as a condition key (provider-specific claims exist only for GitHub, Google,
CircleCI and OCI), so ``environment``, ``environment_protected`` or ``ref_protected`` in a trust
policy would never match; and GitLab's configurable ``sub`` may hold only ``project_path``,
``ref_type`` and ``ref``. Hence a platform project's role in an environment trusts only its own
release branch of the MLOps project for that environment (``models/<environment>/<project>``):
the branch is what lets AWS tell one project's pipelines, and one environment's, from another's.

Role names are predictable (:func:`model_project_role_name`, :func:`deploy_role_name`) so the CI
templates can build the ARN from the account id without exports.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from mlops_constructs._nag import acknowledge_wildcards
from mlops_core.names import ci_release_branch, ci_role_name
from mlops_core.platform_names import ENVIRONMENT_PATTERN

DEFAULT_GITLAB_URL = "https://gitlab.com"
# The audience the CI templates request in `id_tokens:` (and the provider's only client id).
AUDIENCE = "sts.amazonaws.com"
# CDK's default bootstrap qualifier; the deploy role may assume the bootstrap roles only.
DEFAULT_CDK_QUALIFIER = "hnb659fds"
CDK_BOOTSTRAP_ROLES = ("deploy-role", "file-publishing-role", "image-publishing-role", "lookup-role")


def model_project_role_name(environment: str, project: str) -> str:
    return ci_role_name(environment, project)


def deploy_role_name(environment: str) -> str:
    return f"mlops-{environment}-ci-deploy"


def diff_role_name(environment: str) -> str:
    return f"mlops-{environment}-ci-diff"


def _issuer_host(url: str) -> str:
    if not url.startswith("https://") or url.rstrip("/") != url or "?" in url:
        raise ValueError(f"gitlab_url={url!r} must be an https:// URL without a trailing slash or query")
    return url.removeprefix("https://")


def _subjects(project_paths: Sequence[str], refs: Sequence[str], ref_type: str) -> list[str]:
    if not project_paths:
        raise ValueError("gitlab_project_paths must name at least one GitLab project (group/repo)")
    if not refs:
        raise ValueError("refs must name at least one protected ref")
    for path in project_paths:
        if path.count("/") < 1 or any(c in path for c in "*?: "):
            raise ValueError(f"gitlab project path {path!r} must be group[/subgroup]/repo, no wildcards")
    return [f"project_path:{p}:ref_type:{ref_type}:ref:{r}" for p in project_paths for r in refs]


class GitLabCiAccess(Construct):
    """The IAM OIDC provider for a GitLab instance and the roles its CI jobs assume.

    ``existing_provider_arn``: IAM allows one provider per issuer URL and account; pass the ARN when
    another stack (e.g. another environment in the same account) already created it.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        environment_name: str,
        gitlab_url: str = DEFAULT_GITLAB_URL,
        existing_provider_arn: str | None = None,
        max_session_duration: Duration | None = None,
    ) -> None:
        super().__init__(scope, id)
        if not ENVIRONMENT_PATTERN.fullmatch(environment_name):
            raise ValueError(f"environment_name={environment_name!r} is not a platform environment name")
        self.environment_name = environment_name
        self.gitlab_url = gitlab_url
        self._issuer = _issuer_host(gitlab_url)
        self._session = max_session_duration or Duration.hours(1)
        if existing_provider_arn:
            self.provider_arn = existing_provider_arn
        else:
            provider = iam.OidcProviderNative(self, "Provider", url=gitlab_url, client_ids=[AUDIENCE])
            self.provider_arn = provider.oidc_provider_arn
        self.roles: dict[str, iam.Role] = {}

    def _role(self, id: str, *, role_name: str, description: str, subjects: list[str]) -> iam.Role:
        conditions: dict[str, dict[str, object]] = {"StringEquals": {f"{self._issuer}:aud": AUDIENCE}}
        operator = "StringLike" if any("*" in s for s in subjects) else "StringEquals"
        # Merge, not overwrite: with StringEquals both aud and sub must be checked.
        conditions.setdefault(operator, {})[f"{self._issuer}:sub"] = subjects
        principal = iam.FederatedPrincipal(
            self.provider_arn,
            conditions=conditions,
            assume_role_action="sts:AssumeRoleWithWebIdentity",
        )
        role = iam.Role(
            self,
            id,
            role_name=role_name,
            description=description,
            assumed_by=principal,
            max_session_duration=self._session,
        )
        self.roles[role_name] = role
        return role

    def add_model_project_role(
        self,
        id: str,
        *,
        project: str,
        gitlab_project_paths: Sequence[str],
        trigger_alias: lambda_.IAlias,
        protected_branches: Sequence[str] | None = None,
    ) -> iam.Role:
        """Role of one platform project's CI jobs: push/read its own ECR repositories
        (``<project>/*``) and call its own alias of the trigger Lambda (``trigger_alias``, from
        ``DagTrigger.add_project``); nothing else.

        Trusted only for the project's release branch in this environment
        (:func:`mlops_core.names.ci_release_branch`, protected in GitLab) unless
        ``protected_branches`` says otherwise."""
        branches = (
            list(protected_branches)
            if protected_branches is not None
            else [ci_release_branch(self.environment_name, project)]
        )
        role = self._role(
            id,
            role_name=model_project_role_name(self.environment_name, project),
            description=f"GitLab CI of project {project}: push {project}/* images, trigger DAGs",
            subjects=_subjects(gitlab_project_paths, branches, "branch"),
        )
        stack = Stack.of(self)
        repositories = stack.format_arn(service="ecr", resource="repository", resource_name=f"{project}/*")
        # Push only, through ECR's layer API (mlops image release): no registry login token, no pulls.
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:CompleteLayerUpload",
                    "ecr:DescribeImages",
                    "ecr:DescribeRepositories",
                    "ecr:InitiateLayerUpload",
                    "ecr:ListImages",
                    "ecr:PutImage",
                    "ecr:UploadLayerPart",
                ],
                resources=[repositories],
            )
        )
        # Its own alias only (function ARN ":<project>"): through the IAM-authorized URL, which since
        # October 2025 takes both InvokeFunctionUrl and InvokeFunction; and reading that URL.
        alias_arn = trigger_alias.function_arn
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunctionUrl"],
                resources=[alias_arn],
                conditions={"StringEquals": {"lambda:FunctionUrlAuthType": "AWS_IAM"}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction", "lambda:GetFunctionUrlConfig"], resources=[alias_arn])
        )
        acknowledge_wildcards(
            role,
            [f"Resource::arn:*:ecr:*:repository/{project}/*"],
            f"ECR push is limited to the project's own repositories ({project}/<model>), created as models are "
            "added, so the project prefix ends in a wildcard.",
        )
        return role

    def add_deploy_role(
        self,
        id: str,
        *,
        gitlab_project_paths: Sequence[str],
        protected_branches: Sequence[str] = ("main",),
        cdk_qualifier: str = DEFAULT_CDK_QUALIFIER,
    ) -> iam.Role:
        """Role of the infrastructure pipeline's deploy job for this environment: may only assume
        the CDK bootstrap roles (which do the deployment), from protected branches."""
        role = self._role(
            id,
            role_name=deploy_role_name(self.environment_name),
            description=f"GitLab infrastructure pipeline: cdk deploy to {self.environment_name}",
            subjects=_subjects(gitlab_project_paths, protected_branches, "branch"),
        )
        self._allow_bootstrap_roles(role, cdk_qualifier, CDK_BOOTSTRAP_ROLES)
        return role

    def add_diff_role(
        self,
        id: str,
        *,
        gitlab_project_paths: Sequence[str],
        cdk_qualifier: str = DEFAULT_CDK_QUALIFIER,
    ) -> iam.Role:
        """Role for ``cdk diff`` on merge requests (any branch): may only assume CDK's read-only
        lookup role, so an unreviewed branch can read templates but change nothing."""
        role = self._role(
            id,
            role_name=diff_role_name(self.environment_name),
            description=f"GitLab merge requests: read-only cdk diff against {self.environment_name}",
            subjects=_subjects(gitlab_project_paths, ["*"], "branch"),
        )
        self._allow_bootstrap_roles(role, cdk_qualifier, ("lookup-role",))
        return role

    def _allow_bootstrap_roles(self, role: iam.Role, qualifier: str, kinds: Sequence[str]) -> None:
        stack = Stack.of(self)
        arns = [
            stack.format_arn(
                service="iam",
                region="",
                resource="role",
                resource_name=f"cdk-{qualifier}-{kind}-{stack.account}-{stack.region}",
            )
            for kind in kinds
        ]
        role.add_to_policy(iam.PolicyStatement(actions=["sts:AssumeRole"], resources=arns))
