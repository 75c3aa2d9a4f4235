import json
from datetime import UTC, datetime

import pytest
from aws_cdk.assertions import Match
from iam_statements import as_list, covering, render, statements
from synth_helpers import new_app, new_stack, template_of

from mlops_constructs.model_pipeline import ModelPipeline
from mlops_constructs.platform_ref import PlatformRef
from mlops_constructs.validation import ConfigurationError
from mlops_core import names
from mlops_core.platform_names import PlatformNames

NAMES = PlatformNames(environment="dev", account="111111111111", region="eu-west-1")


def _pipeline(stack=None, *, model="process-classifier", log_forwarding=False, **overrides):
    stack = stack or new_stack()
    platform = PlatformRef.of(
        stack, names=NAMES, log_forwarding=log_forwarding, slack_webhook_secret_name="mlops/dev/slack-webhook"
    )
    props = {
        "gate": {"metric": "f1", "threshold": 0.85},
        "training": {"instance_type": "ml.m5.xlarge", "hyperparameters": {"n_estimators": 200}},
        "endpoint": {"autoscaling": {"min_capacity": 1, "max_capacity": 4}},
        **overrides,
    }
    pipeline = ModelPipeline(stack, model, platform=platform, project="endpoint-security", model=model, **props)
    return stack, pipeline


BUCKET_ARN = f"arn:aws:s3:::{NAMES.airflow_bucket}"
KEY_ARN = "arn:aws:kms:eu-west-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ACCOUNT_LOGS = "arn:aws:logs:eu-west-1:111111111111:log-group:"


PHASES = ("Create", "Update", "Delete")


def _publish_calls(template: dict) -> dict[str, dict]:
    """The S3 calls of each model's configuration publisher: logical id -> Create/Update/Delete."""
    return {
        logical_id: {phase: json.loads(render(resource["Properties"][phase])) for phase in PHASES}
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "Custom::AWS" and "PublishConfiguration" in logical_id
    }


def test_publishes_the_pipeline_configuration_into_the_model_s_own_dag_folder():
    stack, pipeline = _pipeline()
    ((calls),) = _publish_calls(template_of(stack).to_json()).values()
    key = "dags/pipelines/endpoint-security/process-classifier/pipeline.json"
    for phase, action in (("Create", "putObject"), ("Update", "putObject"), ("Delete", "deleteObject")):
        assert calls[phase]["service"] == "S3" and calls[phase]["action"] == action
        assert calls[phase]["parameters"]["Bucket"] == NAMES.airflow_bucket
        assert calls[phase]["parameters"]["Key"] == key
    published = json.loads(calls["Create"]["parameters"]["Body"])
    assert published["gate"]["threshold"] == 0.85 and published["training"]["instance_type"] == "ml.m5.xlarge"
    # Deploy-time values stay valid JSON: CloudFormation fills them in.
    assert published["sagemaker_role_arn"].startswith("<processclassifierSageMakerRole")
    assert published["kms_key_arn"].startswith("<SsmParameterValuemlopsdevplatformkmskeyarn")
    config = pipeline.config
    assert config.training.instance_type == "ml.m5.xlarge"
    assert config.gate.threshold == 0.85
    assert config.endpoint.autoscaling.max_capacity == 4
    assert config.endpoint_name == "endpoint-security--pro-5faba3"
    assert config.endpoint.rollback_alarm_names, "blue/green deployments need alarms to roll back on"
    assert config.data_bucket == NAMES.data_bucket and config.notifications.sns_topic_arn == NAMES.alerts_topic_arn


def test_a_model_stack_can_write_only_its_own_pipeline_json_in_the_mwaa_bucket():
    """Everything else in the MWAA bucket (DAGs, plugins.zip, startup.sh) runs as the MWAA execution
    role: no identity of a model stack may put or delete it, nor another model's configuration."""
    stack, _ = _pipeline()
    _pipeline(stack, model="other-model")
    template = template_of(stack).to_json()
    own = f"{BUCKET_ARN}/dags/pipelines/endpoint-security/process-classifier/pipeline.json"
    other = f"{BUCKET_ARN}/dags/pipelines/endpoint-security/other-model/pipeline.json"
    elsewhere = [
        f"{BUCKET_ARN}/environment/startup.sh",
        f"{BUCKET_ARN}/environment/plugins.zip",
        f"{BUCKET_ARN}/dags/mlops_training_evaluation.py",
        f"{BUCKET_ARN}/dags/pipelines/endpoint-security/process-classifier/extra.py",
    ]
    writes = ("s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObjectAcl", "s3:AbortMultipartUpload")
    everyone = statements(template)
    for arn in elsewhere:
        for action in writes:
            assert not covering(everyone, action, arn), f"{action} on {arn} is allowed"
    publisher = statements(template, attached_to="processclassifierPublishConfigurationRole")
    assert covering(publisher, "s3:PutObject", own) and covering(publisher, "s3:DeleteObject", own)
    assert not covering(publisher, "s3:PutObject", other)
    # The CDK's provider Lambda (one per stack) holds no S3 permission, only its models' publisher roles.
    provider = statements(template, attached_to="AWS679f53fac002430cb0da5b7982bd2287")
    assert not any(covering(provider, action, arn) for action in writes for arn in [own, other, *elsewhere])
    assumable = {render(r) for s in provider if s["Action"] == "sts:AssumeRole" for r in as_list(s["Resource"])}
    assert assumable == {
        f"arn:aws:iam::111111111111:role/mlops-dev-{names.model_stem('endpoint-security', model)}-publish"
        for model in ("process-classifier", "other-model")
    }


def test_the_publisher_role_trusts_only_the_stack_s_provider_and_encrypts_through_s3():
    stack, _ = _pipeline()
    template = template_of(stack).to_json()
    (role,) = [
        r["Properties"]
        for lid, r in template["Resources"].items()
        if r["Type"] == "AWS::IAM::Role" and "PublishConfigurationRole" in lid
    ]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert render(trust["Principal"]["AWS"]).startswith("<AWS679f53fac002430cb0da5b7982bd2287ServiceRole")
    (kms,) = [s for s in statements(template, attached_to="PublishConfigurationRole") if "kms" in str(s["Action"])]
    assert kms["Action"] == "kms:GenerateDataKey"
    assert render(kms["Resource"]).startswith("<SsmParameterValuemlopsdevplatformkmskeyarn"), "the platform key only"
    assert kms["Condition"] == {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}}


def test_sagemaker_role_reaches_only_this_model_s_data_artifacts_and_image():
    stack, _ = _pipeline()
    template = template_of(stack)
    template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "RoleName": "mlops-dev-endpoint-security--pro-5faba3-sm",
            "AssumeRolePolicyDocument": {
                "Statement": [Match.object_like({"Principal": {"Service": "sagemaker.amazonaws.com"}})]
            },
        },
    )
    role_policy = next(
        p
        for p in template.find_resources("AWS::IAM::Policy").values()
        if "SageMakerRole" in json.dumps(p["Properties"]["Roles"])
    )
    text = json.dumps(role_policy)
    assert f"{NAMES.data_bucket}/endpoint-security/process-classifier/*" in text
    assert f"{NAMES.artifact_bucket}/endpoint-security/process-classifier/*" in text
    assert f'{NAMES.data_bucket}/*"' not in text, "no access to other models' data"
    assert "kms:ResourceAliases" in text and NAMES.kms_alias in text
    assert "cloudwatch:DescribeAlarms" in text and "mlops-dev-endpoint-security--process-classifier-5xx-errors" in text


def _role_statements(**overrides) -> list[dict]:
    stack, _ = _pipeline(**overrides)
    return statements(template_of(stack).to_json(), attached_to="SageMakerRole")


def test_only_sagemaker_acting_for_this_account_and_region_may_assume_the_model_role():
    """SageMaker's confused-deputy guidance: aws:SourceAccount and aws:SourceArn in the trust policy
    (https://docs.aws.amazon.com/sagemaker/latest/dg/security-confused-deputy-prevention.html)."""
    stack, _ = _pipeline()
    sagemaker_role = {"Properties": {"RoleName": Match.string_like_regexp("-sm$")}}
    (role,) = template_of(stack).find_resources("AWS::IAM::Role", sagemaker_role).values()
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": "111111111111"}
    assert render(trust["Condition"]["ArnLike"]["aws:SourceArn"]) == "arn:aws:sagemaker:eu-west-1:111111111111:*"


def test_sagemaker_role_may_create_volume_key_grants_for_aws_resources_only():
    """Training and evaluation set VolumeKmsKeyId to the platform key: SageMaker creates a KMS grant
    as the job's role (https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html), and
    without kms:CreateGrant the job fails to start."""
    grants = covering(_role_statements(), "kms:CreateGrant", KEY_ARN)
    assert grants
    for grant in grants:
        assert grant["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}
        assert grant["Condition"]["ForAnyValue:StringEquals"] == {"kms:ResourceAliases": NAMES.kms_alias}


def test_sagemaker_role_may_write_its_job_and_endpoint_logs_where_sagemaker_writes_them():
    """SageMaker writes job logs to the shared groups /aws/sagemaker/TrainingJobs and
    /aws/sagemaker/ProcessingJobs, in streams named after the job (``<job>/algo-1-<epoch>``,
    ``<job>/<host>-<epoch>``), and endpoint logs to /aws/sagemaker/Endpoints/<endpoint>
    (https://docs.aws.amazon.com/sagemaker/latest/dg/logging-cloudwatch.html). Log-group actions
    are authorised on ``log-group:<name>:*``, PutLogEvents on the stream's ARN."""
    role = _role_statements()
    run = names.RunName.new("endpoint-security", "process-classifier", "1.2.3", 0, datetime(2026, 1, 2, tzinfo=UTC))
    other = names.RunName.new("endpoint-security", "other-model", "1.2.3", 0, datetime(2026, 1, 2, tzinfo=UTC))
    for group, stream in (("TrainingJobs", f"{run}/algo-1-1767312000"), ("ProcessingJobs", f"{run}/algo-1-1767312000")):
        log_group = f"{ACCOUNT_LOGS}/aws/sagemaker/{group}"
        for action in ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams"):
            assert covering(role, action, f"{log_group}:*"), f"{action} on {group}"
        assert covering(role, "logs:PutLogEvents", f"{log_group}:log-stream:{stream}"), group
        assert not covering(role, "logs:PutLogEvents", f"{log_group}:log-stream:{other}/algo-1-1767312000")
    endpoint_group = f"{ACCOUNT_LOGS}/aws/sagemaker/Endpoints/endpoint-security--pro-5faba3"
    assert covering(role, "logs:CreateLogStream", f"{endpoint_group}:*")
    assert covering(role, "logs:PutLogEvents", f"{endpoint_group}:log-stream:AllTraffic/i-0123456789abcdef0")


def test_endpoint_logs_are_retained_encrypted_and_forwarded_when_enabled():
    stack, _ = _pipeline(log_forwarding=True)
    template = template_of(stack)
    template.has_resource_properties(
        "AWS::Logs::LogGroup",
        {
            "LogGroupName": "/aws/sagemaker/Endpoints/endpoint-security--pro-5faba3",
            "RetentionInDays": 90,
            "KmsKeyId": Match.any_value(),
        },
    )
    template.resource_count_is("AWS::Logs::SubscriptionFilter", 1)
    template.has_resource_properties("AWS::ECR::Repository", {"RepositoryName": "endpoint-security/process-classifier"})


def test_a_model_pipeline_stays_small_enough_for_many_per_stack():
    stack = new_stack()
    for i in range(3):
        _pipeline(stack, model=f"model-{i}")
    resources = template_of(stack).to_json()["Resources"]
    per_model = sum(1 for logical_id in resources if logical_id.startswith("model0"))
    assert per_model <= 14, f"{per_model} resources per model"


@pytest.mark.parametrize(
    "overrides,message",
    [
        (
            {"endpoint": {"autoscaling": {"min_capacity": 5, "max_capacity": 2}}},
            "min_capacity=5 is greater than max_capacity=2",
        ),
        ({"gate": {"metric": "mse", "threshold": 0.1}}, "gate.metric: 'mse' is not a classification metric"),
        (
            {"training": {"instance_type": "m5.large"}},
            "training.instance_type: must be a SageMaker instance type such as ml.m5.large (got 'm5.large')",
        ),
        ({"gate": {"metric": "f1"}}, "gate.threshold: required, but not set"),
    ],
)
def test_bad_pipeline_settings_fail_synth_naming_field_and_value(overrides, message):
    with pytest.raises(ConfigurationError) as failure:
        _pipeline(**overrides)
    assert message in str(failure.value)
    assert (
        "ModelPipeline 'process-classifier' (project 'endpoint-security', model 'process-classifier'), "
        "environment 'dev'" in str(failure.value)
    )


@pytest.mark.parametrize("model", ["Process-Classifier", "process_classifier", "x" * 41])
def test_invalid_model_names_fail_naming_the_value(model):
    with pytest.raises(ValueError, match="model="):
        _pipeline(model=model)


def test_duplicate_project_and_model_in_one_app_fails_naming_both_places():
    app = new_app()
    _pipeline(new_stack(app, "A"))
    with pytest.raises(
        ValueError, match=r"duplicate model: project='endpoint-security' model='process-classifier'.*A/.*B/"
    ):
        _pipeline(new_stack(app, "B"))


def _drift_alarms(template: dict) -> list[dict]:
    return [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"].get("MetricName") == names.DRIFTED_FEATURES_METRIC
    ]


def test_the_drift_alarm_watches_drifted_features_once_per_check_and_notifies_the_project_s_drift_topic():
    stack, _ = _pipeline(drift={"check_interval_hours": 6})
    template = template_of(stack).to_json()
    (alarm,) = _drift_alarms(template)
    assert alarm["AlarmName"] == names.drift_alarm_name("dev", "endpoint-security", "process-classifier")
    assert alarm["Namespace"] == names.MODEL_METRICS_NAMESPACE
    assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == names.model_metric_dimensions(
        "dev", "endpoint-security", "process-classifier"
    )
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    assert (alarm["Period"], alarm["EvaluationPeriods"], alarm["TreatMissingData"]) == (6 * 3600, 1, "notBreaching")
    assert alarm["AlarmActions"] == [NAMES.drift_topic_arn("endpoint-security")]
    assert "OKActions" not in alarm
    dashboard = render(
        next(r for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Dashboard")["Properties"][
            "DashboardBody"
        ]
    )
    assert names.DRIFTED_FEATURES_METRIC in dashboard
    assert f"{{{names.DRIFT_METRICS_NAMESPACE},Endpoint,MonitoringSchedule}}" in dashboard
    assert "MetricName=feature_baseline_drift'" in dashboard


def test_no_drift_alarm_when_drift_monitoring_is_off():
    stack, _ = _pipeline(drift={"enabled": False})
    assert _drift_alarms(template_of(stack).to_json()) == []
