import json

import pytest
from aws_cdk.assertions import Match
from synth_helpers import new_app, new_stack, template_of

from mlops_constructs.model_pipeline import ModelPipeline
from mlops_constructs.platform_ref import PlatformRef
from mlops_constructs.validation import ConfigurationError
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


def _published_config(template) -> dict:
    deployment = next(iter(template.find_resources("Custom::CDKBucketDeployment").values()))
    return deployment["Properties"]


def test_publishes_the_pipeline_configuration_into_the_model_s_own_dag_folder():
    stack, pipeline = _pipeline()
    template = template_of(stack)
    props = _published_config(template)
    assert props["DestinationBucketName"] == NAMES.airflow_bucket
    assert props["DestinationBucketKeyPrefix"] == "dags/pipelines/endpoint-security/process-classifier/"
    assert props["Prune"] is True
    config = pipeline.config
    assert config.training.instance_type == "ml.m5.xlarge"
    assert config.gate.threshold == 0.85
    assert config.endpoint.autoscaling.max_capacity == 4
    assert config.endpoint_name == "endpoint-security--pro-5faba3"
    assert config.endpoint.rollback_alarm_names, "blue/green deployments need alarms to roll back on"
    assert config.data_bucket == NAMES.data_bucket and config.notifications.sns_topic_arn == NAMES.alerts_topic_arn


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
