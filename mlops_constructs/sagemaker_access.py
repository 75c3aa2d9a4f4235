"""What SageMaker does as a model's role: who may assume it, and where it writes logs."""

from __future__ import annotations

from aws_cdk import aws_iam as iam

from mlops_core.names import DRIFT_CHECK_NAME_INFIX

SAGEMAKER_JOB_LOG_GROUPS = ("/aws/sagemaker/TrainingJobs", "/aws/sagemaker/ProcessingJobs")
# Drift checks are processing jobs named <stem>-drift-<time> (mlops_core.names.drift_check_name).
DRIFT_CHECK_LOG_GROUP = "/aws/sagemaker/ProcessingJobs"


def sagemaker_principal(*, partition: str, region: str, account: str) -> iam.ServicePrincipal:
    """SageMaker, acting for resources of this account and region only: the confused-deputy
    conditions SageMaker documents for an execution role's trust policy
    (https://docs.aws.amazon.com/sagemaker/latest/dg/security-confused-deputy-prevention.html)."""
    return iam.ServicePrincipal(
        "sagemaker.amazonaws.com",
        conditions={
            "StringEquals": {"aws:SourceAccount": account},
            "ArnLike": {"aws:SourceArn": f"arn:{partition}:sagemaker:{region}:{account}:*"},
        },
    )


def sagemaker_log_statements(
    *, partition: str, region: str, account: str, stem: str, endpoint: str
) -> list[iam.PolicyStatement]:
    """Where SageMaker writes a model's logs as the model's role
    (https://docs.aws.amazon.com/sagemaker/latest/dg/logging-cloudwatch.html): training and
    processing jobs into the shared groups ``/aws/sagemaker/TrainingJobs`` and
    ``/aws/sagemaker/ProcessingJobs``, in streams ``<job-name>/algo-<n>-<epoch>`` and
    ``<job-name>/<host>-<epoch>`` (job names are run names, ``<stem>-v<major>-...``, and drift
    checks, ``<stem>-drift-<time>``: mlops_core.names.drift_check_name); the endpoint into its own
    group ``/aws/sagemaker/Endpoints/<endpoint>``.

    CreateLogGroup, CreateLogStream and DescribeLogStreams act on a log group (IAM ARN
    ``log-group:<name>:*``, per the CloudWatch Logs access-control overview); PutLogEvents on a log
    stream (``log-group:<name>:log-stream:<stream>``), which is where one model's job logs are told
    apart from another's.
    """
    group = f"arn:{partition}:logs:{region}:{account}:log-group:"
    job_groups = [f"{group}{name}" for name in SAGEMAKER_JOB_LOG_GROUPS]
    endpoint_group = f"{group}/aws/sagemaker/Endpoints/{endpoint}"
    return [
        iam.PolicyStatement(
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams"],
            resources=[arn for g in (*job_groups, endpoint_group) for arn in (g, f"{g}:*")],
        ),
        iam.PolicyStatement(
            actions=["logs:PutLogEvents"],
            resources=[
                *(f"{g}:log-stream:{stem}-v*" for g in job_groups),
                f"{group}{DRIFT_CHECK_LOG_GROUP}:log-stream:{stem}{DRIFT_CHECK_NAME_INFIX}*",
                f"{endpoint_group}:log-stream:*",
            ],
        ),
    ]


def sagemaker_log_wildcards(*, stem: str, endpoint: str) -> list[str]:
    """The cdk-nag IAM5 findings :func:`sagemaker_log_statements` raises, one pattern each."""
    group = "Resource::arn:*:logs:*:log-group:"
    return [
        *(f"{group}{name}:*" for name in SAGEMAKER_JOB_LOG_GROUPS),
        *(f"{group}{name}:log-stream:{stem}-v*" for name in SAGEMAKER_JOB_LOG_GROUPS),
        f"{group}{DRIFT_CHECK_LOG_GROUP}:log-stream:{stem}{DRIFT_CHECK_NAME_INFIX}*",
        f"{group}/aws/sagemaker/Endpoints/{endpoint}:*",
        f"{group}/aws/sagemaker/Endpoints/{endpoint}:log-stream:*",
    ]
