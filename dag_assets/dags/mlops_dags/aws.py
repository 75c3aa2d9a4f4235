"""AWS clients and error helpers for the DAG tasks (waiting is the triggerer's: mlops_dags.waits).

Clients come from the Amazon provider's AwsBaseHook, so the Airflow connection (on MWAA: the
execution role) decides credentials and region, and boto3's standard AWS_ENDPOINT_URL variables
can point everything at a local AWS in tests. Imports stay inside functions: DAG parsing must not
pay for boto3.
"""

from __future__ import annotations

from mlops_dags import settings


def client(service: str, *, max_attempts: int = 5):
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
    from botocore.config import Config

    # Standard retry mode retries throttling and transient errors with backoff.
    config = Config(retries={"max_attempts": max_attempts, "mode": "standard"})
    return AwsBaseHook(aws_conn_id=settings.AWS_CONN_ID, client_type=service, config=config).get_conn()


def error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None) or {}
    return response.get("Error", {}).get("Code")


def is_not_found(exc: BaseException) -> bool:
    """SageMaker answers a missing resource with ValidationException ("Could not find ...", for a
    training job "Requested resource not found.")."""
    code = error_code(exc)
    message = str(exc)
    return code in {"ResourceNotFound", "ResourceNotFoundException", "NoSuchKey", "404"} or (
        code in {"ValidationException", "ValidationError"}
        and any(text in message for text in ("Could not find", "does not exist", "Requested resource not found"))
    )


def is_already_exists(exc: BaseException) -> bool:
    code = error_code(exc)
    message = str(exc)
    return code in {"ResourceInUse", "ConflictException"} or (
        code in {"ValidationException", "ValidationError"}
        and ("already existing" in message or "already exists" in message)
    )


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"{uri!r} is not an s3:// URI")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def read_s3_json(s3, uri: str):
    import json

    bucket, key = split_s3_uri(uri)
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def region_of(boto_client) -> str:
    return boto_client.meta.region_name
