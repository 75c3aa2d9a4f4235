"""CloudWatch alarm actions: when an alarm changes state, CloudWatch publishes the alarm's
notification to the SNS topics among its actions, as the service principal
``cloudwatch.amazonaws.com`` (moto changes the state but runs no action).

As on AWS, the publish is authorized by the topic's resource policy (``aws:SourceArn`` = the alarm,
``aws:SourceAccount``) and, for an encrypted topic, by the key policy of the topic's key; a refused
action is not delivered and is recorded (``/_local_aws/events``, kind ``AlarmAction``) with the
reason, as AWS writes "Failed to execute action" into the alarm's history.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from local_aws.sagemaker.core import EventLog

log = logging.getLogger("local_aws.alarms")
SERVICE = "cloudwatch.amazonaws.com"
_ACTIONS_OF_STATE = {"ALARM": "alarm_actions", "OK": "ok_actions", "INSUFFICIENT_DATA": "insufficient_data_actions"}


def alarm_state(account: str, region: str, name: str) -> str | None:
    from moto.cloudwatch.models import cloudwatch_backends

    alarm = cloudwatch_backends[account][region].alarms.get(name)
    return alarm.state_value if alarm is not None else None


def run_alarm_actions(
    *, account: str, region: str, name: str, old_state: str | None, iam: Any, events: EventLog
) -> None:
    """Publish the notification of an alarm whose state just changed to each SNS action."""
    from moto.cloudwatch.models import cloudwatch_backends
    from moto.sns.models import sns_backends

    alarm = cloudwatch_backends[account][region].alarms.get(name)
    if alarm is None or alarm.state_value == old_state or not alarm.actions_enabled:
        return
    for action in getattr(alarm, _ACTIONS_OF_STATE[alarm.state_value]):
        if not action.startswith("arn:aws:sns:"):
            continue
        refused = _refused(iam, account, region, alarm.alarm_arn, action)
        if refused:
            log.warning("alarm %s: failed to execute action %s: %s", name, action, refused)
            events.record("AlarmAction", name, "Failed", f"Failed to execute action {action}. {refused}")
            continue
        topic = sns_backends[account][action.split(":")[3]].topics.get(action)
        if topic is None:
            events.record("AlarmAction", name, "Failed", f"Failed to execute action {action}: topic not found")
            continue
        subject = f'{alarm.state_value}: "{name}" in {region}'
        topic.publish(_notification(account, region, alarm, old_state), subject=subject[:100])
        events.record("AlarmAction", name, "Published", action)


def _refused(iam: Any, account: str, region: str, alarm_arn: str, topic_arn: str) -> str | None:
    if iam is None:
        return None
    from local_aws.iam import actions as rules
    from local_aws.iam.calls import ApiCall

    context = {"aws:SourceArn": alarm_arn, "aws:SourceAccount": account}
    checks = [rules.Check("sns:Publish", topic_arn, dict(context), rules.PolicyRef("topic", topic_arn))]
    request = rules.Request(call=ApiCall("sns", "Publish", {}, region), account=account, state=iam.state)
    key = iam.state.topic_kms_key(topic_arn)
    for check in rules.kms_via(request, key, ["kms:GenerateDataKey", "kms:Decrypt"], "sns"):
        check.context.update(context)
        checks.append(check)
    decision = iam.authorize_service(SERVICE, checks)
    return None if decision.allowed else decision.message


def _notification(account: str, region: str, alarm: Any, old_state: str | None) -> str:
    """The message CloudWatch sends to SNS (the fields people and tools read)."""
    return json.dumps(
        {
            "AlarmName": alarm.name,
            "AlarmDescription": alarm.description,
            "AWSAccountId": account,
            "AlarmConfigurationUpdatedTimestamp": alarm.configuration_updated_timestamp.isoformat(),
            "NewStateValue": alarm.state_value,
            "NewStateReason": alarm.state_reason,
            "StateChangeTime": datetime.now(UTC).isoformat(),
            "Region": region,
            "AlarmArn": alarm.alarm_arn,
            "OldStateValue": old_state,
            "Trigger": {
                "MetricName": alarm.metric_name,
                "Namespace": alarm.namespace,
                "Statistic": alarm.statistic,
                "Dimensions": [{"name": d.name, "value": d.value} for d in alarm.dimensions],
                "Period": alarm.period,
                "EvaluationPeriods": alarm.evaluation_periods,
                "ComparisonOperator": alarm.comparison_operator,
                "Threshold": alarm.threshold,
            },
        }
    )
