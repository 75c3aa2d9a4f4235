"""GitLabCiAccess: the OIDC provider and the trust conditions that keep CI keyless and scoped."""

from __future__ import annotations

import json
import os

os.environ.setdefault("CDK_VALIDATION", "false")

import pytest  # noqa: E402
from aws_cdk import App, Environment, Stack, Validations  # noqa: E402
from aws_cdk import aws_lambda as lambda_  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402
from cfnlint.api import lint  # noqa: E402

from mlops_constructs.ci_access import (  # noqa: E402
    AUDIENCE,
    GitLabCiAccess,
    deploy_role_name,
    diff_role_name,
    model_project_role_name,
)
from mlops_constructs.dag_trigger import DagTrigger  # noqa: E402
from mlops_core.platform_names import PlatformNames  # noqa: E402

ACCOUNT, REGION = "111111111111", "eu-west-1"
PLATFORM = PlatformNames(environment="dev", account=ACCOUNT, region=REGION)
MLOPS_PROJECT = "ml-platform/mlops"
INFRA_PROJECT = "ml-platform/infrastructure"


def build(app: App | None = None, **props):
    stack = Stack(app or App(), "Ci", env=Environment(account=ACCOUNT, region=REGION))
    trigger = DagTrigger(
        stack, "Trigger", environment_name="dev", code=lambda_.Code.from_inline("def handler(e, c): pass")
    )
    access = GitLabCiAccess(stack, "CiAccess", environment_name="dev", **props)
    access.add_model_project_role(
        "Fraud",
        project="fraud",
        gitlab_project_paths=[MLOPS_PROJECT],
        trigger_alias=trigger.add_project("fraud"),
    )
    access.add_model_project_role(
        "Malware", project="malware", gitlab_project_paths=[MLOPS_PROJECT], trigger_alias=trigger.add_project("malware")
    )
    access.add_deploy_role("Deploy", gitlab_project_paths=[INFRA_PROJECT])
    access.add_diff_role("Diff", gitlab_project_paths=[INFRA_PROJECT])
    return stack, access


def render(value):
    """Fn::Join ARNs as strings, pseudo parameters as {AWS::...}."""
    if isinstance(value, list):
        return [render(v) for v in value]
    if isinstance(value, dict) and "Fn::Join" in value:
        return "".join(p if isinstance(p, str) else "{" + next(iter(p.values())) + "}" for p in value["Fn::Join"][1])
    return value


def policy_of(stack: Stack, template: Template, role_construct) -> list[dict]:
    role_id = stack.get_logical_id(role_construct.node.default_child)
    (policy,) = [
        p["Properties"]
        for p in template.find_resources("AWS::IAM::Policy").values()
        if p["Properties"]["Roles"] == [{"Ref": role_id}]
    ]
    return policy["PolicyDocument"]["Statement"]


def role(template: Template, name: str) -> dict:
    (found,) = [
        r for r in template.find_resources("AWS::IAM::Role").values() if r["Properties"].get("RoleName") == name
    ]
    return found["Properties"]


def test_oidc_provider_for_gitlab_with_sts_audience():
    stack, _ = build()
    Template.from_stack(stack).has_resource_properties(
        "AWS::IAM::OIDCProvider",
        {
            "Url": "https://gitlab.com",
            "ClientIdList": [AUDIENCE],
        },
    )


def test_self_managed_gitlab_url_is_the_issuer_in_conditions():
    stack, _ = build(gitlab_url="https://gitlab.example.org")
    template = Template.from_stack(stack)
    template.has_resource_properties("AWS::IAM::OIDCProvider", {"Url": "https://gitlab.example.org"})
    condition = role(template, deploy_role_name("dev"))["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]
    assert condition["StringEquals"]["gitlab.example.org:aud"] == AUDIENCE


def test_existing_provider_is_reused_not_created():
    arn = f"arn:aws:iam::{ACCOUNT}:oidc-provider/gitlab.com"
    stack, _ = build(existing_provider_arn=arn)
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::IAM::OIDCProvider", 0)
    statement = role(template, deploy_role_name("dev"))["AssumeRolePolicyDocument"]["Statement"][0]
    assert statement["Principal"] == {"Federated": arn}


def test_each_project_role_trusts_only_its_own_release_branch_for_its_environment():
    stack, _ = build()
    template = Template.from_stack(stack)
    for project in ("fraud", "malware"):
        statement = role(template, model_project_role_name("dev", project))["AssumeRolePolicyDocument"]["Statement"]
        assert len(statement) == 1
        assert statement[0]["Action"] == "sts:AssumeRoleWithWebIdentity"
        # Exact match (StringEquals, no wildcard): main and the other project's branch are refused.
        assert statement[0]["Condition"] == {
            "StringEquals": {
                "gitlab.com:aud": AUDIENCE,
                "gitlab.com:sub": [f"project_path:{MLOPS_PROJECT}:ref_type:branch:ref:models/dev/{project}"],
            }
        }


def test_each_environments_role_trusts_another_branch_so_dev_tokens_cannot_assume_prod():
    """AWS evaluates only aud and sub of a GitLab token; the environment is in the ref."""
    subjects = {}
    for environment in ("dev", "prod"):
        stack = Stack(App(), "Ci", env=Environment(account=ACCOUNT, region=REGION))
        trigger = DagTrigger(stack, "T", environment_name=environment, code=lambda_.Code.from_inline("x"))
        access = GitLabCiAccess(stack, "CiAccess", environment_name=environment)
        access.add_model_project_role(
            "Fraud", project="fraud", gitlab_project_paths=[MLOPS_PROJECT], trigger_alias=trigger.add_project("fraud")
        )
        trust = role(Template.from_stack(stack), model_project_role_name(environment, "fraud"))
        (statement,) = trust["AssumeRolePolicyDocument"]["Statement"]
        assert set(statement["Condition"]["StringEquals"]) == {"gitlab.com:aud", "gitlab.com:sub"}
        subjects[environment] = statement["Condition"]["StringEquals"]["gitlab.com:sub"]
    assert not set(subjects["dev"]) & set(subjects["prod"])


def test_model_project_role_pushes_only_its_own_repositories_and_calls_only_its_own_alias():
    stack, access = build()
    template = Template.from_stack(stack)
    statements = policy_of(stack, template, access.roles[model_project_role_name("dev", "fraud")])
    ecr = next(s for s in statements if "ecr:PutImage" in s["Action"])
    assert render(ecr["Resource"]) == f"arn:{{AWS::Partition}}:ecr:{REGION}:{ACCOUNT}:repository/fraud/*"
    assert not any("ecr:GetAuthorizationToken" in json.dumps(s["Action"]) for s in statements)  # no registry login
    url = next(s for s in statements if s["Action"] == "lambda:InvokeFunctionUrl")
    assert url["Condition"] == {"StringEquals": {"lambda:FunctionUrlAuthType": "AWS_IAM"}}
    invoke = next(s for s in statements if "lambda:InvokeFunction" in s["Action"] and s is not url)
    for statement in (url, invoke):
        (alias,) = [r for r in template.find_resources("AWS::Lambda::Alias") if "fraud" in r.lower()]
        assert statement["Resource"] == {"Ref": alias}, statement  # the fraud alias, not the function
    actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert not any(a.startswith(("iam:", "sts:", "s3:", "airflow:")) for a in actions)


def test_deploy_role_only_assumes_cdk_bootstrap_roles_from_protected_main():
    stack, access = build()
    template = Template.from_stack(stack)
    trust = role(template, deploy_role_name("dev"))["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]
    assert trust["StringEquals"]["gitlab.com:sub"] == [f"project_path:{INFRA_PROJECT}:ref_type:branch:ref:main"]
    assert trust["StringEquals"]["gitlab.com:aud"] == AUDIENCE
    (statement,) = policy_of(stack, template, access.roles[deploy_role_name("dev")])
    assert statement["Action"] == "sts:AssumeRole"
    assert render(statement["Resource"]) == [
        f"arn:{{AWS::Partition}}:iam::{ACCOUNT}:role/cdk-hnb659fds-{kind}-{ACCOUNT}-{REGION}"
        for kind in ("deploy-role", "file-publishing-role", "image-publishing-role", "lookup-role")
    ]


def test_diff_role_any_branch_but_only_the_read_only_lookup_role():
    stack, access = build()
    template = Template.from_stack(stack)
    trust = role(template, diff_role_name("dev"))["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]
    assert trust["StringLike"]["gitlab.com:sub"] == [f"project_path:{INFRA_PROJECT}:ref_type:branch:ref:*"]
    assert trust["StringEquals"]["gitlab.com:aud"] == AUDIENCE
    (statement,) = policy_of(stack, template, access.roles[diff_role_name("dev")])
    assert statement["Action"] == "sts:AssumeRole"
    assert render(statement["Resource"]) == (
        f"arn:{{AWS::Partition}}:iam::{ACCOUNT}:role/cdk-hnb659fds-lookup-role-{ACCOUNT}-{REGION}"
    )


def test_sessions_are_short_and_no_keys_exist():
    stack, _ = build()
    template = Template.from_stack(stack)
    ci_roles = [
        r for r in template.find_resources("AWS::IAM::Role").values() if "Federated" in json.dumps(r["Properties"])
    ]
    assert len(ci_roles) == 4
    for resource in ci_roles:
        assert resource["Properties"]["MaxSessionDuration"] == 3600
    template.resource_count_is("AWS::IAM::AccessKey", 0)
    template.resource_count_is("AWS::IAM::User", 0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"gitlab_project_paths": ["mlops"]}, "group"),
        ({"gitlab_project_paths": ["group/*"]}, "no wildcards"),
        ({"gitlab_project_paths": []}, "at least one"),
        ({"gitlab_project_paths": ["g/r"], "protected_branches": []}, "protected ref"),
    ],
)
def test_bad_project_paths_fail_at_synth(kwargs, message):
    stack = Stack(App(), "Bad")
    access = GitLabCiAccess(stack, "Ci", environment_name="dev")
    with pytest.raises(ValueError, match=message):
        access.add_deploy_role("Deploy", **kwargs)


def test_bad_gitlab_url_fails():
    with pytest.raises(ValueError, match="https://"):
        GitLabCiAccess(Stack(App(), "Bad"), "Ci", environment_name="dev", gitlab_url="http://gitlab.local")


def test_cdk_nag_and_cfn_lint_are_clean():
    app = App()
    stack, _ = build(app)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    assembly = app.synth()
    template = assembly.get_stack_artifact(stack.artifact_id).template
    assert [str(m) for m in lint(json.dumps(template), regions=[REGION])] == []
