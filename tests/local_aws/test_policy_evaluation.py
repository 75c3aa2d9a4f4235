"""The policy engine local AWS uses (local_aws/iam/engine.mjs, @cloud-copilot/iam-simulate) against
the rules and examples of AWS's documentation, so a wrong evaluator cannot pass for a right one:

- IAM User Guide, "Policy evaluation logic" and "Policy evaluation for requests within a single
  account": identity OR resource policy allows within one account; an explicit deny anywhere wins;
  role trust policies and KMS key policies must themselves allow the principal; a resource policy
  naming a role *session* is not limited by the identity policy, one naming the role is limited by
  a permissions boundary; boundaries intersect with identity policies.
- "IAM JSON policy elements: NotAction / NotResource", "Condition operators" (StringLike
  wildcards, ArnLike, Bool, ...IfExists, ForAnyValue/ForAllValues, multiple keys AND, multiple
  values OR) and "Available keys for AWS OIDC federation".
"""

from __future__ import annotations

import pytest

from local_aws.iam.policy_engine import PolicyEngine

ACCOUNT = "111122223333"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/examplerole"
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/examplerole/examplerolesessionname"
BUCKET = "amzn-s3-demo-bucket-carlossalazar-logs"


@pytest.fixture(scope="module")
def engine():
    engine = PolicyEngine()
    yield engine
    engine.close()


def policy(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


def decide(
    engine, *, action, resource, identity=(), resource_policy=None, boundary=None, principal=SESSION, context=None
):
    simulation = {
        "identityPolicies": [{"name": f"p{i}", "policy": p} for i, p in enumerate(identity)],
        "request": {
            "principal": principal,
            "action": action,
            "resource": {"resource": resource, "accountId": ACCOUNT},
            "contextVariables": {"aws:PrincipalArn": ROLE, **(context or {})},
        },
    }
    if resource_policy is not None:
        simulation["resourcePolicy"] = resource_policy
    if boundary is not None:
        simulation["permissionBoundaryPolicies"] = [{"name": "boundary", "policy": boundary}]
    return engine.evaluate(simulation).result


ALLOW_LIST = policy({"Effect": "Allow", "Action": ["s3:GetBucketLocation", "s3:ListBucket"], "Resource": "*"})
BUCKET_ALLOWS_PUT = policy(
    {"Effect": "Allow", "Principal": {"AWS": SESSION}, "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{BUCKET}/*"}
)


def test_same_account_either_identity_or_resource_policy_allows(engine):
    # The User Guide's Carlos example: the user policy grants list only, the bucket policy grants
    # PutObject to him: saving the file is allowed.
    assert (
        decide(
            engine,
            action="s3:PutObject",
            resource=f"arn:aws:s3:::{BUCKET}/file",
            identity=[ALLOW_LIST],
            resource_policy=BUCKET_ALLOWS_PUT,
        )
        == "Allowed"
    )
    assert (
        decide(engine, action="s3:PutObject", resource=f"arn:aws:s3:::{BUCKET}/file", identity=[ALLOW_LIST])
        == "ImplicitlyDenied"
    )


def test_an_explicit_deny_in_any_policy_overrides_allows(engine):
    deny = policy({"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": f"arn:aws:s3:::{BUCKET}/*"})
    allow_all = policy({"Effect": "Allow", "Action": "*", "Resource": "*"})
    assert (
        decide(
            engine,
            action="s3:PutObject",
            resource=f"arn:aws:s3:::{BUCKET}/f",
            identity=[allow_all],
            resource_policy=deny,
        )
        == "ExplicitlyDenied"
    )
    identity_deny = policy({"Effect": "Deny", "Action": "s3:PutObject", "Resource": "*"})
    assert (
        decide(
            engine,
            action="s3:PutObject",
            resource=f"arn:aws:s3:::{BUCKET}/f",
            identity=[allow_all, identity_deny],
            resource_policy=BUCKET_ALLOWS_PUT,
        )
        == "ExplicitlyDenied"
    )


def test_role_trust_policy_must_allow_the_principal(engine):
    allow_assume = policy({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"})
    trust_lambda = policy(
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    )
    other = f"arn:aws:iam::{ACCOUNT}:role/other"
    assert (
        decide(engine, action="sts:AssumeRole", resource=other, identity=[allow_assume], resource_policy=trust_lambda)
        == "ImplicitlyDenied"
    )
    assert (
        decide(
            engine,
            action="sts:AssumeRole",
            resource=other,
            principal="lambda.amazonaws.com",
            resource_policy=trust_lambda,
        )
        == "Allowed"
    )


def test_kms_key_policy_must_allow_the_account_for_iam_policies_to_count(engine):
    key = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    identity = policy({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"})
    logs_only = policy(
        {
            "Effect": "Allow",
            "Principal": {"Service": "logs.us-east-1.amazonaws.com"},
            "Action": "kms:*",
            "Resource": "*",
        }
    )
    delegates = policy(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"}
    )
    assert (
        decide(engine, action="kms:Decrypt", resource=key, identity=[identity], resource_policy=logs_only) != "Allowed"
    )
    assert (
        decide(engine, action="kms:Decrypt", resource=key, identity=[identity], resource_policy=delegates) == "Allowed"
    )
    assert decide(engine, action="kms:Decrypt", resource=key, resource_policy=delegates) == "ImplicitlyDenied"


def test_resource_policy_for_a_session_is_not_limited_by_identity_but_one_for_the_role_is_by_a_boundary(engine):
    resource = f"arn:aws:s3:::{BUCKET}/f"
    boundary = policy({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})
    to_session = policy(
        {"Effect": "Allow", "Principal": {"AWS": SESSION}, "Action": "s3:PutObject", "Resource": resource}
    )
    to_role = policy({"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "s3:PutObject", "Resource": resource})
    assert decide(engine, action="s3:PutObject", resource=resource, resource_policy=to_session) == "Allowed"
    assert (
        decide(engine, action="s3:PutObject", resource=resource, resource_policy=to_role, boundary=boundary)
        == "ImplicitlyDenied"
    )


def test_permissions_boundary_intersects_identity_policies(engine):
    identity = policy({"Effect": "Allow", "Action": ["s3:*", "sns:Publish"], "Resource": "*"})
    boundary = policy({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})
    topic = f"arn:aws:sns:us-east-1:{ACCOUNT}:alerts"
    assert (
        decide(
            engine, action="s3:GetObject", resource=f"arn:aws:s3:::{BUCKET}/k", identity=[identity], boundary=boundary
        )
        == "Allowed"
    )
    assert (
        decide(engine, action="sns:Publish", resource=topic, identity=[identity], boundary=boundary)
        == "ImplicitlyDenied"
    )


def test_not_action_and_not_resource(engine):
    # "Allow NotAction iam:*" allows everything but IAM; "Deny NotResource" denies all other resources.
    everything_but_iam = policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})
    only_this_bucket = policy(
        {"Effect": "Deny", "Action": "s3:*", "NotResource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"]}
    )
    assert (
        decide(engine, action="s3:GetObject", resource=f"arn:aws:s3:::{BUCKET}/k", identity=[everything_but_iam])
        == "Allowed"
    )
    assert decide(engine, action="iam:PassRole", resource=ROLE, identity=[everything_but_iam]) == "ImplicitlyDenied"
    assert (
        decide(
            engine,
            action="s3:GetObject",
            resource="arn:aws:s3:::another-bucket/k",
            identity=[everything_but_iam, only_this_bucket],
        )
        == "ExplicitlyDenied"
    )


KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k"
KEY_POLICY = policy(
    {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"}
)
METRICS = ("cloudwatch:PutMetricData", "*", None)
GRANT = ("kms:CreateGrant", KEY, KEY_POLICY)


@pytest.mark.parametrize(
    ("request_", "condition", "context", "expected"),
    [
        # StringLike wildcards; multiple values of one key are OR'ed.
        (
            METRICS,
            {"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "aws/sagemaker/*"]}},
            {"cloudwatch:namespace": "aws/sagemaker/TrainingJobs"},
            "Allowed",
        ),
        (
            METRICS,
            {"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*"]}},
            {"cloudwatch:namespace": "MLOps/Models"},
            "ImplicitlyDenied",
        ),
        # Several keys are AND'ed; a missing key fails a plain operator.
        (
            METRICS,
            {
                "StringEquals": {"aws:SourceAccount": ACCOUNT},
                "ArnLike": {"aws:SourceArn": "arn:aws:cloudwatch:*:*:alarm:*"},
            },
            {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:x"},
            "Allowed",
        ),
        (
            METRICS,
            {
                "StringEquals": {"aws:SourceAccount": ACCOUNT},
                "ArnLike": {"aws:SourceArn": "arn:aws:cloudwatch:*:*:alarm:*"},
            },
            {"aws:SourceAccount": ACCOUNT},
            "ImplicitlyDenied",
        ),
        # ...IfExists matches when the key is absent.
        (METRICS, {"StringEqualsIfExists": {"aws:SourceAccount": ACCOUNT}}, {}, "Allowed"),
        # ForAnyValue over a multi-valued key (the platform key matched by its alias).
        (
            GRANT,
            {"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/mlops-dev"}},
            {"kms:ResourceAliases": ["alias/other", "alias/mlops-dev"]},
            "Allowed",
        ),
        (
            GRANT,
            {"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/mlops-dev"}},
            {"kms:ResourceAliases": ["alias/other"]},
            "ImplicitlyDenied",
        ),
        (
            GRANT,
            {"Bool": {"kms:GrantIsForAWSResource": "true"}},
            {"kms:GrantIsForAWSResource": "false"},
            "ImplicitlyDenied",
        ),
    ],
)
def test_condition_operators(engine, request_, condition, context, expected):
    action, resource, resource_policy = request_
    identity = policy({"Effect": "Allow", "Action": action, "Resource": "*", "Condition": condition})
    assert (
        decide(
            engine,
            action=action,
            resource=resource,
            identity=[identity],
            resource_policy=resource_policy,
            context=context,
        )
        == expected
    )


def test_oidc_claims_of_any_provider_are_condition_keys(engine):
    provider = f"arn:aws:iam::{ACCOUNT}:oidc-provider/gitlab.example.com"
    trust = policy(
        {
            "Effect": "Allow",
            "Principal": {"Federated": provider},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {
                    "gitlab.example.com:aud": "sts.amazonaws.com",
                    "gitlab.example.com:sub": "project_path:ml/mlops:ref_type:branch:ref:models/a",
                }
            },
        }
    )
    claims = {
        "gitlab.example.com:aud": "sts.amazonaws.com",
        "gitlab.example.com:sub": "project_path:ml/mlops:ref_type:branch:ref:models/a",
    }
    assert (
        decide(
            engine,
            action="sts:AssumeRoleWithWebIdentity",
            resource=ROLE,
            principal=provider,
            resource_policy=trust,
            context=claims,
        )
        == "Allowed"
    )
    other = {**claims, "gitlab.example.com:sub": "project_path:ml/mlops:ref_type:branch:ref:models/b"}
    assert (
        decide(
            engine,
            action="sts:AssumeRoleWithWebIdentity",
            resource=ROLE,
            principal=provider,
            resource_policy=trust,
            context=other,
        )
        == "ImplicitlyDenied"
    )


def test_an_unknown_action_or_a_resource_of_the_wrong_type_is_an_error(engine):
    allow = policy({"Effect": "Allow", "Action": "*", "Resource": "*"})
    assert decide(engine, action="mwaa:InvokeRestApi", resource="*", identity=[allow]) == "Error"
    assert (
        decide(
            engine, action="sagemaker:ListModels", resource="arn:aws:sagemaker:us-east-1:1:model/x", identity=[allow]
        )
        == "Error"
    )
