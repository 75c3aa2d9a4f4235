"""cdk-nag AwsSolutions runs on every synth of the app: zero unacknowledged findings, every
acknowledgement with a reason, and a real violation still fails."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks
from synth_helpers import new_app, new_stack

from mlops_constructs._nag import acknowledge, acknowledge_wildcards


def _report(assembly: cdk.cx_api.CloudAssembly) -> dict:
    return json.loads((Path(assembly.directory) / "validation-report.json").read_text())


def test_app_has_no_unacknowledged_findings(every_app):
    # build_app registered AwsSolutionsChecks; synthesis raises on any unacknowledged finding.
    report = _report(every_app.assembly)
    nag = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert nag and nag[0]["conclusion"] == "success"
    assert nag[0]["violations"] == []


def test_unacknowledged_violation_fails_synth():
    app = new_app()
    stack = new_stack(app)
    s3.Bucket(stack, "Unsafe")  # no SSL enforcement, no access logs
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(Exception, match="AwsSolutions-S10"):
        app.synth()


def test_wildcard_outside_the_reviewed_patterns_still_fails():
    from aws_cdk import aws_iam as iam

    app = new_app()
    stack = new_stack(app)
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=["arn:aws:s3:::reviewed/*"]))
    role.add_to_policy(iam.PolicyStatement(actions=["s3:PutObject"], resources=["arn:aws:s3:::unreviewed/*"]))
    acknowledge_wildcards(role, ["Resource::arn:*:s3:::reviewed/*"], "reviewed prefix of the test bucket, on purpose")
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(Exception) as failure:
        app.synth()
    assert "unreviewed" in str(failure.value)
    assert "Resource::arn:aws:s3:::reviewed/*" not in str(failure.value)


def test_acknowledgement_without_reason_is_refused():
    stack = new_stack()
    with pytest.raises(ValueError, match="needs a real reason"):
        acknowledge(stack, {"AwsSolutions-S1": "because"})


def test_cdk_handler_acknowledgements_do_not_cover_what_we_add_to_their_roles():
    """The CDK's BucketDeployment handler role is shared by the stack: a grant we add to it (here a
    KMS key wildcard and a second bucket) needs its own acknowledgement, not the CDK's."""
    from aws_cdk import aws_iam as iam
    from aws_cdk import aws_s3_deployment as s3deploy

    from mlops_constructs._nag import acknowledge_cdk_handlers

    app = new_app()
    stack = new_stack(app)
    logs = s3.Bucket(stack, "Logs", enforce_ssl=True)
    target = s3.Bucket(stack, "Target", enforce_ssl=True, server_access_logs_bucket=logs)
    deployment = s3deploy.BucketDeployment(
        stack, "Deploy", destination_bucket=target, sources=[s3deploy.Source.data("a.txt", "a")]
    )
    deployment.handler_role.add_to_principal_policy(
        iam.PolicyStatement(actions=["kms:Decrypt"], resources=["arn:aws:kms:eu-west-1:111111111111:key/*"])
    )
    acknowledge(stack, {"AwsSolutions-S1": "test buckets, access logs are not the point of this test"})
    acknowledge_cdk_handlers(stack)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(Exception) as failure:
        app.synth()
    message = str(failure.value)
    assert "Resource::arn:aws:kms:eu-west-1:111111111111:key/*" in message
    assert "Target" in message, "the destination bucket's objects are the deploying construct's to acknowledge"
    assert "cdk-hnb659fds-assets" not in message, "the CDK asset bucket read is the CDK's own"
