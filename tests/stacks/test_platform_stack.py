"""How the platform stack wires its constructs together, as a deployer relies on it."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match, Template
from iam_statements import render, wildcard_match


def _platform(synthesized, environment: str) -> Template:
    stage = next(s for s in synthesized.stages() if s.node.id == environment)
    return Template.from_json(synthesized.template(stage.platform))


def test_each_project_gets_its_ci_role_and_ci_can_deploy_without_keys(synthesized):
    template = _platform(synthesized, "dev")
    for name in ("mlops-dev-ci-example-team", "mlops-dev-ci-deploy", "mlops-dev-ci-diff"):
        template.has_resource_properties("AWS::IAM::Role", {"RoleName": name})
    template.resource_count_is("AWS::IAM::OIDCProvider", 1)
    template.resource_count_is("AWS::IAM::User", 0)
    template.resource_count_is("AWS::IAM::AccessKey", 0)


def test_trigger_lambda_is_the_only_way_in_and_may_only_invoke_the_rest_api_of_this_environment(synthesized):
    template = _platform(synthesized, "dev")
    template.has_resource_properties("AWS::Lambda::Function", {"FunctionName": "mlops-dev-dag-trigger"})
    policies = json.dumps(template.find_resources("AWS::IAM::Policy"))
    assert "airflow:InvokeRestApi" in policies
    assert ":role/mlops-dev/" in policies, "InvokeRestApi is authorised on the environment's Airflow role ARN"


def test_every_log_group_of_the_platform_is_encrypted_with_the_platform_key(every_app):
    """The CDK's own handler log groups are the only exception (checkov CKV_AWS_158 skipped on each of them,
    mlops_constructs/_checkov.py)."""
    cdk_handlers = ("CustomCDKBucketDeployment", "AWS679f53fac002430cb0da5b7982bd2287")
    for stage in every_app.stages():
        for stack in (stage.platform, *stage.projects):
            groups = Template.from_json(every_app.template(stack)).find_resources("AWS::Logs::LogGroup")
            ours = {lid: g for lid, g in groups.items() if not lid.startswith(cdk_handlers)}
            assert ours, f"{stack.stack_name} has no log group of its own"
            for logical_id, group in ours.items():
                assert "KmsKeyId" in group["Properties"], f"{stack.stack_name}/{logical_id} is not KMS-encrypted"


def test_kms_key_arn_is_published_for_model_stacks_and_key_is_retained(synthesized):
    template = _platform(synthesized, "dev")
    template.has_resource_properties("AWS::SSM::Parameter", {"Name": "/mlops/dev/platform/kms-key-arn"})
    template.has_resource(
        "AWS::KMS::Key", {"DeletionPolicy": "Retain", "Properties": Match.object_like({"EnableKeyRotation": True})}
    )


def test_logs_are_forwarded_where_enabled_and_only_there(synthesized):
    dev, prod = _platform(synthesized, "dev"), _platform(synthesized, "prod")
    dev.resource_count_is("AWS::KinesisFirehose::DeliveryStream", 0)
    prod.resource_count_is("AWS::KinesisFirehose::DeliveryStream", 1)
    # 5 MWAA log groups + the trigger Lambda's.
    prod.resource_count_is("AWS::Logs::SubscriptionFilter", 6)


def test_project_stacks_depend_on_the_platform_only_for_ordering(every_app):
    for stage in every_app.stages():
        for project in stage.projects:
            assert stage.platform in project.dependencies
            assert "Fn::ImportValue" not in json.dumps(every_app.template(project))


# Properties that give a resource its physical name (a second resource of that name cannot exist).
PHYSICAL_NAME_PROPERTIES = (
    "BucketName",
    "RepositoryName",
    "LogGroupName",
    "LogStreamName",
    "RoleName",
    "TopicName",
    "FunctionName",
    "DeliveryStreamName",
    "Name",
)


def test_no_fixed_name_resource_survives_the_rollback_of_its_own_create(every_app):
    """A resource with a fixed name and DeletionPolicy Retain stays behind when the deploy that
    created it rolls back, and the retry fails with AlreadyExists. RetainExceptOnCreate keeps it on
    stack deletion and replacement only."""
    offenders = []
    for stack in every_app.stacks():
        for logical_id, resource in every_app.template(stack)["Resources"].items():
            properties = resource.get("Properties", {})
            fixed = [p for p in PHYSICAL_NAME_PROPERTIES if isinstance(properties.get(p), str)]
            if fixed and resource.get("DeletionPolicy") == "Retain":
                offenders.append(f"{stack.stack_name}/{logical_id} ({properties[fixed[0]]})")
    assert offenders == []


def test_every_alarm_may_publish_to_the_topics_it_notifies_and_to_no_other_project_s_drift_topic(every_app):
    """CloudWatch publishes an alarm's notification as cloudwatch.amazonaws.com for the alarm's ARN:
    each topic's policy must allow the ARNs of the alarms that notify it, or SNS refuses the
    notification; a project's drift topic allows no other project's alarm (it starts runs)."""
    for stage in every_app.stages():
        platform = every_app.template(stage.platform)
        account, region = stage.platform.account, stage.platform.region
        resources = platform["Resources"]
        sources: dict[str, list[str]] = {}  # topic name -> the alarm ARNs its policy lets publish
        for policy in (r for r in resources.values() if r["Type"] == "AWS::SNS::TopicPolicy"):
            (topic_ref,) = policy["Properties"]["Topics"]
            name = resources[topic_ref["Ref"]]["Properties"]["TopicName"]
            sources[name] = [
                render(s["Condition"]["ArnLike"]["aws:SourceArn"])
                for s in policy["Properties"]["PolicyDocument"]["Statement"]
                if s["Effect"] == "Allow" and s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
            ]
        alarms = [
            r["Properties"]
            for stack in (stage.platform, *stage.projects)
            for r in every_app.template(stack)["Resources"].values()
            if r["Type"] == "AWS::CloudWatch::Alarm"
        ]
        assert alarms
        drift_topics = {name for name in sources if "-drift-" in name}
        assert drift_topics, "the fixture project has a drift topic"
        for alarm in alarms:
            assert alarm["AlarmActions"], f"{alarm['AlarmName']} notifies nobody"
            arn = f"arn:aws:cloudwatch:{region}:{account}:alarm:{alarm['AlarmName']}"
            notified = {
                resources[action["Ref"]]["Properties"]["TopicName"]
                if isinstance(action, dict) and "Ref" in action
                else render(action).rsplit(":", 1)[1]
                for action in alarm["AlarmActions"]
            }
            for topic in notified:
                assert any(wildcard_match(source, arn) for source in sources[topic]), f"{topic} refuses {arn}"
            for topic in drift_topics - notified:
                assert not any(wildcard_match(source, arn) for source in sources[topic]), f"{topic} allows {arn}"
