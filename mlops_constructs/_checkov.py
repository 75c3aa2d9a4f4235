"""checkov skips, one resource at a time, each with its reason.

checkov reads a CloudFormation resource's ``Metadata: {checkov: {skip: [{id, comment}]}}`` and
reports those checks as skipped for that resource only
(https://www.checkov.io/2.Basics/Suppressing%20and%20Skipping%20Policies.html), so a resource
added later is checked in full; ``.checkov.yaml`` skips nothing globally.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import CfnResource
from constructs import IConstruct

MIN_REASON_LENGTH = 20

# The CDK's own custom-resource handlers (BucketDeployment, AwsCustomResource, the VPC's
# default-security-group restriction): their function properties are chosen by the CDK.
CDK_HANDLER_FUNCTION = {
    "CKV_AWS_115": "CDK-provided custom-resource handler, run by CloudFormation a few times per deployment; the "
    "CDK exposes no reserved concurrency for it.",
    "CKV_AWS_116": "CDK-provided custom-resource handler, invoked synchronously by CloudFormation, which reports "
    "its errors in the stack events: a dead-letter queue would hold nothing anyone reads.",
    "CKV_AWS_117": "CDK-provided custom-resource handler that calls only public AWS APIs (S3, STS, EC2): a VPC "
    "would add NAT or endpoint dependencies without reducing its exposure.",
}
# BucketDeployment's handler also has an environment variable (the CA bundle path, no secret).
CDK_BUCKET_DEPLOYMENT_FUNCTION = {
    **CDK_HANDLER_FUNCTION,
    "CKV_AWS_173": "CDK-provided BucketDeployment handler: its only environment variable is the CA bundle path, "
    "no secret; Lambda encrypts it at rest with its service key.",
}
CDK_HANDLER_LOG_GROUP = {
    "CKV_AWS_158": "Log group the CDK creates for its own custom-resource handler (request logs, no data): the "
    "CDK exposes no KMS key for it. Every other log group is encrypted with the platform key "
    "(tests/stacks/test_platform_stack.py).",
}


def skip_checks(resource: IConstruct, reasons: Mapping[str, str]) -> None:
    """Skip checkov ``reasons``' checks on ``resource`` (a CfnResource, or a construct whose
    default child is one), each with its reason."""
    cfn = resource if isinstance(resource, CfnResource) else resource.node.default_child
    if not isinstance(cfn, CfnResource):
        raise TypeError(f"{resource.node.path} is not a CloudFormation resource")
    skips = list((cfn.get_metadata("checkov") or {}).get("skip", []))
    known = {skip["id"] for skip in skips}
    for check, reason in reasons.items():
        if len(reason.strip()) < MIN_REASON_LENGTH:
            raise ValueError(f"checkov skip {check} on {cfn.node.path} needs a real reason, got {reason!r}")
        if check not in known:
            skips.append({"id": check, "comment": reason})
    cfn.add_metadata("checkov", {"skip": skips})
