"""Roles for tests of service behaviour (not of permissions): a role a service may assume and that
may do everything. Tests of the platform's own permissions use the roles the CDK app synthesizes
(local_mode.cdk_env.provision) instead.

Takes a boto3 IAM client, so importing ``local_aws`` stays standard-library only.
"""

from __future__ import annotations

import json
from typing import Any

ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def trust_policy(service: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    }


def ensure_service_role(iam: Any, name: str, service: str = "sagemaker.amazonaws.com") -> str:
    """Create (or find) role ``name`` that ``service`` may assume and that is allowed everything."""
    try:
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust_policy(service)))["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        arn = iam.get_role(RoleName=name)["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="allow-all-for-tests", PolicyDocument=json.dumps(ALLOW_ALL))
    return arn
