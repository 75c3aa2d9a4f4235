"""SNS delivering to a ``lambda`` subscription: local Lambda runs the function (or alias).

What AWS does (Amazon SNS Developer Guide, "Fanout Amazon SNS notifications to Lambda functions";
Lambda Developer Guide, "Invoking Lambda functions with Amazon SNS notifications"):
- SNS invokes the subscribed function or alias **asynchronously**, as the service principal
  ``sns.amazonaws.com``; the invocation is authorized by the function's resource-based policy
  (``AWS::Lambda::Permission``), whose conditions see ``aws:SourceArn`` = the topic's ARN (and
  ``aws:SourceAccount``). Without that permission the delivery fails and nothing runs;
- a function error is retried: Lambda runs an asynchronous invocation "two more times, with a
  one-minute wait between the first two attempts, and two minutes between the second and third"
  (Lambda Developer Guide, "Error handling and automatic retries in Lambda"); the waits come from
  the scenario (``lambda.async_retry_delays_seconds``), each attempt is an event;
- the event is ``{"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0",
  "EventSubscriptionArn", "Sns": {"Type": "Notification", "MessageId", "TopicArn", "Subject",
  "Message", "Timestamp", "SignatureVersion", ...}}]}``, one record per invocation.

moto delivers a lambda subscription to its own (docker-run) Lambda; this replaces that for the
functions local Lambda runs. A refused delivery is recorded (``/_local_aws/events``, kind
``SnsDelivery``, status ``Failed``) and not delivered; a delivered one is recorded with the
function's answer. Functions local Lambda does not know are left to moto, as before.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("local_aws.sns")
SERVICE = "sns.amazonaws.com"
KIND = "SnsDelivery"


def sns_event(subscription_arn: str, topic_arn: str, message: str, message_id: str, subject: str | None) -> dict:
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": subscription_arn,
                "Sns": {
                    "Type": "Notification",
                    "MessageId": message_id,
                    "TopicArn": topic_arn,
                    "Subject": subject,
                    "Message": message,
                    "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                    "SignatureVersion": "1",
                    "MessageAttributes": {},
                },
            }
        ]
    }


def refused(iam: Any, account: str, function_arn: str, topic_arn: str) -> str | None:
    """Why SNS may not invoke ``function_arn`` for ``topic_arn`` (None: it may)."""
    if iam is None:
        return None
    from local_aws.iam import actions as rules

    context = {"aws:SourceArn": topic_arn, "aws:SourceAccount": account}
    check = rules.Check("lambda:InvokeFunction", function_arn, context, rules.PolicyRef("function", function_arn))
    decision = iam.authorize_service(SERVICE, [check])
    return None if decision.allowed else decision.message


def deliver(
    lambda_service: Any,
    iam: Any,
    events: Any,
    subscription: Any,
    message: str,
    message_id: str,
    subject,
    retry_delays: Any = lambda: (),
):
    """Deliver one message to a lambda subscription; True when local Lambda handled it."""
    parts = subscription.endpoint.split(":")
    if len(parts) not in (7, 8) or parts[6] not in lambda_service.functions:
        return False
    function = lambda_service.functions[parts[6]]
    qualifier = parts[7] if len(parts) == 8 else ""
    topic_arn = subscription.topic.arn
    if qualifier and qualifier != "$LATEST" and qualifier not in function.aliases:
        events.record(KIND, subscription.endpoint, "Failed", f"Function not found: {subscription.endpoint}")
        return True
    why = refused(iam, lambda_service.account, subscription.endpoint, topic_arn)
    if why:
        log.warning("SNS %s -> %s refused: %s", topic_arn, subscription.endpoint, why)
        events.record(KIND, subscription.endpoint, "Failed", f"{topic_arn}: {why}")
        return True
    event = sns_event(subscription.arn, topic_arn, message, message_id, subject)

    def invoke() -> None:
        delays = list(retry_delays())
        while True:
            answer = lambda_service.run(function, qualifier, event)
            outcome = answer.get("payload") if answer.get("ok") else {"errorType": answer.get("errorType")}
            detail = f"{topic_arn}: {json.dumps(outcome, default=str)}"
            if answer.get("ok") or not delays:
                events.record(KIND, subscription.endpoint, "Delivered", detail)
                return
            delay = float(delays.pop(0))
            events.record(KIND, subscription.endpoint, "Retrying", f"{detail}; again in {delay:g} s")
            time.sleep(delay)

    # Asynchronous, as on AWS: the publisher (e.g. an alarm's SetAlarmState) does not wait.
    threading.Thread(target=invoke, name=f"sns-{uuid.uuid4().hex[:8]}", daemon=True).start()
    return True


def install(lambda_service: Any, iam: Any, events: Any, scenario: Any = None) -> None:
    """Route moto's lambda-subscription deliveries to local Lambda."""
    from moto.sns.models import Subscription

    original = Subscription.publish

    def publish(self, message, message_id, subject=None, message_attributes=None, **kwargs):
        if self.protocol != "lambda":
            return original(self, message, message_id, subject, message_attributes, **kwargs)
        matcher = self._filter_policy_matcher
        if matcher is not None and not matcher.matches(message_attributes, message):
            return None  # as moto: a filtered-out message is not delivered
        text = message
        if kwargs.get("message_structure") == "json":
            text = self._parse_message_structure(message, self.protocol)
        delays = (lambda: scenario.snapshot()["lambda"]["async_retry_delays_seconds"]) if scenario else (lambda: ())
        if deliver(lambda_service, iam, events, self, text, message_id, subject, delays):
            return None
        return original(self, message, message_id, subject, message_attributes, **kwargs)

    Subscription.publish = publish
