"""Local CloudWatch evaluates metric alarms when data arrives (local_aws.alarm_evaluation).

The rules encoded are CloudWatch's (User Guide, "Evaluating an alarm" and "Configuring how
CloudWatch alarms treat missing data"): M of the last N periods must breach; a missing period is
left out, counted as good or bad, or keeps the state, as TreatMissingData says.
"""

from __future__ import annotations

import json

import boto3
import pytest

from local_aws.alarm_evaluation import decide


def _state(values, *, m=1, missing="missing", current="OK"):
    return decide(
        values,
        statistic_threshold=1,
        comparison="GreaterThanOrEqualToThreshold",
        datapoints_to_alarm=m,
        treat_missing_data=missing,
        current_state=current,
    )[0]


@pytest.mark.parametrize(
    ("values", "m", "missing", "expected"),
    [
        # 1 of 1: the newest period decides.
        ([2.0], 1, "missing", "ALARM"),
        ([0.0], 1, "missing", "OK"),
        # "M out of N": 2 of the last 3 periods must breach.
        ([2.0, 0.0, 2.0], 2, "missing", "ALARM"),
        ([0.0, 0.0, 2.0], 2, "missing", "OK"),
        # No data at all: INSUFFICIENT_DATA (missing), OK (notBreaching), ALARM (breaching).
        ([None], 1, "missing", "INSUFFICIENT_DATA"),
        ([None], 1, "notBreaching", "OK"),
        ([None], 1, "breaching", "ALARM"),
        # A missing period beside a breaching one: bad only when missing data is breaching.
        ([None, 2.0], 2, "notBreaching", "OK"),
        ([None, 2.0], 2, "breaching", "ALARM"),
    ],
)
def test_an_alarm_is_decided_by_m_of_n_periods_and_its_missing_data_rule(values, m, missing, expected):
    assert _state(values, m=m, missing=missing) == expected


def test_ignore_keeps_the_state_when_no_period_has_data():
    assert _state([None], missing="ignore", current="ALARM") == "ALARM"
    assert _state([None], missing="ignore", current="OK") == "OK"


def test_data_that_crosses_the_threshold_fires_the_alarm_and_runs_its_action(aws, unique):
    sns, sqs, cloudwatch = boto3.client("sns"), boto3.client("sqs"), boto3.client("cloudwatch")
    topic = sns.create_topic(Name=unique("drift"))["TopicArn"]
    sns.set_topic_attributes(
        TopicArn=topic,
        AttributeName="Policy",
        AttributeValue=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "cloudwatch.amazonaws.com"},
                        "Action": "sns:Publish",
                        "Resource": topic,
                    }
                ],
            }
        ),
    )
    queue = sqs.create_queue(QueueName=unique("readback"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    alarm, namespace = unique("drifted"), unique("Ns")
    dimensions = [{"Name": "Model", "Value": "scorer"}]
    cloudwatch.put_metric_alarm(
        AlarmName=alarm,
        Namespace=namespace,
        MetricName="DriftedFeatures",
        Dimensions=dimensions,
        Statistic="Maximum",
        Period=3600,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        TreatMissingData="notBreaching",
        AlarmActions=[topic],
    )

    def put(value: float) -> str:
        cloudwatch.put_metric_data(
            Namespace=namespace,
            MetricData=[{"MetricName": "DriftedFeatures", "Dimensions": dimensions, "Value": value}],
        )
        return cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["StateValue"]

    # Data of another model's metric does not touch this alarm.
    cloudwatch.put_metric_data(
        Namespace=namespace,
        MetricData=[{"MetricName": "DriftedFeatures", "Dimensions": [{"Name": "Model", "Value": "x"}], "Value": 5}],
    )
    assert cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["StateValue"] == "OK"

    assert put(0) == "OK"
    assert put(2) == "ALARM"
    messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=2).get("Messages", [])
    assert len(messages) == 1
    notification = json.loads(json.loads(messages[0]["Body"])["Message"])
    assert notification["AlarmName"] == alarm and notification["NewStateValue"] == "ALARM"
    # Still drifting: no second notification (an alarm acts on a state change only).
    assert put(3) == "ALARM"
    assert sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages", []) == []
