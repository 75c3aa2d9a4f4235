"""A function for local Lambda's tests: answers with what it was given and who it runs as."""

import json
import os

import boto3


def handler(event, context):
    identity = boto3.client("sts").get_caller_identity()["Arn"]
    body = {
        "invoked_function_arn": context.invoked_function_arn,
        "runs_as": identity,
        "setting": os.environ.get("SETTING"),
        "authorizer": ((event.get("requestContext") or {}).get("authorizer") if isinstance(event, dict) else None),
        "body": event.get("body") if isinstance(event, dict) else None,
    }
    if isinstance(event, dict) and event.get("version") == "2.0":
        return {"statusCode": 201, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}
    return body
