"""ModelPipeline's typed settings: a model team writes ``QualityGate(...)``, ``TrainingSettings(...)``
(completed and type-checked by an editor) or the same as dicts, and gets the same published
configuration; a mistake names the file and line of the call, the environment and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from synth_helpers import new_stack

from mlops_constructs import (
    Autoscaling,
    DataCapture,
    DeploymentSettings,
    EndpointSettings,
    EvaluationSettings,
    ModelPipeline,
    PlatformRef,
    QualityGate,
    Retraining,
    ShadowCriteria,
    TrainingSettings,
)
from mlops_constructs.validation import ConfigurationError
from mlops_core.platform_names import PlatformNames

NAMES = PlatformNames(environment="dev", account="111111111111", region="eu-west-1")
THIS_FILE = str(Path(__file__).resolve().relative_to(Path.cwd().resolve()))


def _config(stack, **props) -> dict:
    platform = PlatformRef.of(stack, names=NAMES)
    pipeline = ModelPipeline(stack, "Scorer", platform=platform, project="fraud", model="scorer", **props)
    return stack.resolve(pipeline.config.model_dump(mode="json"))


def test_typed_settings_publish_the_same_configuration_as_dicts():
    typed = _config(
        new_stack(),
        problem_type="regression",
        training=TrainingSettings(instance_type="ml.m5.xlarge", hyperparameters={"alpha": 0.5}),
        evaluation=EvaluationSettings(max_runtime_seconds=900),
        gate=QualityGate(metric="mse", threshold=0.25, max_regression=0.01),
        endpoint=EndpointSettings(instance_type="ml.c5.large", autoscaling=Autoscaling(min_capacity=1, max_capacity=3)),
        retraining=Retraining(interval_days=7),
        data_capture=DataCapture(sampling_percentage=25),
    )
    plain = _config(
        new_stack(),
        problem_type="regression",
        training={"instance_type": "ml.m5.xlarge", "hyperparameters": {"alpha": 0.5}},
        evaluation={"max_runtime_seconds": 900},
        gate={"metric": "mse", "threshold": 0.25, "max_regression": 0.01},
        endpoint={"instance_type": "ml.c5.large", "autoscaling": {"min_capacity": 1, "max_capacity": 3}},
        retraining={"interval_days": 7},
        data_capture={"sampling_percentage": 25},
    )
    assert typed == plain
    assert typed["gate"] == {"metric": "mse", "threshold": 0.25, "max_regression": 0.01}
    assert typed["endpoint"]["autoscaling"]["max_capacity"] == 3 and typed["retraining"]["interval_days"] == 7
    assert typed["data_capture"] == {"enabled": True, "sampling_percentage": 25}


def test_a_bad_value_names_the_call_s_file_and_line_the_environment_the_field_and_the_value():
    with pytest.raises(ConfigurationError) as failure:
        _config(new_stack(), gate={"metric": "f1", "threshold": 1.5})  # the line named below
    line = _config.__code__.co_firstlineno + 2  # the ModelPipeline(...) call inside _config
    assert str(failure.value) == (
        f"{THIS_FILE}, line {line}: ModelPipeline 'Scorer' (project 'fraud', model 'scorer'), environment 'dev':\n"
        "  gate.threshold: f1 lies between 0 and 1 and a candidate must reach the threshold, so 1.5 can never "
        "pass: use a threshold between 0 and 1, e.g. 0.85 (got 1.5)"
    )


def test_a_misspelt_setting_gets_the_known_ones_and_the_likely_one():
    with pytest.raises(ConfigurationError) as failure:
        _config(new_stack(), gate={"metric": "f1", "threshold": 0.8}, endpoint={"autoscalling": {}})
    assert "  endpoint.autoscalling: unknown setting; did you mean 'autoscaling'? the settings here are: " in str(
        failure.value
    )


def test_the_deployment_strategy_is_published_for_the_deployment_dag_and_mistakes_name_the_setting():
    gate = {"metric": "f1", "threshold": 0.8}
    typed = _config(
        new_stack(),
        gate=gate,
        deployment=DeploymentSettings(strategy="shadow", bake_seconds=600, shadow=ShadowCriteria(min_invocations=50)),
    )
    plain = _config(
        new_stack(),
        gate=gate,
        deployment={"strategy": "shadow", "bake_seconds": 600, "shadow": {"min_invocations": 50}},
    )
    assert typed == plain and typed["deployment"]["shadow"]["min_invocations"] == 50
    assert _config(new_stack(), gate=gate)["deployment"]["strategy"] == "blue_green"
    with pytest.raises(
        ConfigurationError, match="deployment.bake_seconds: bake_seconds applies to strategy .shadow. or .ab."
    ):
        _config(new_stack(), gate=gate, deployment={"bake_seconds": 600})


def test_an_environment_s_trial_bake_cap_shortens_longer_bakes_only():
    """config/local.yaml caps trials (max_trial_bake_seconds) so make demo's shadow trial takes seconds."""
    gate = {"metric": "f1", "threshold": 0.8}

    def published(stack, deployment) -> dict:
        platform = PlatformRef.of(stack, names=NAMES, max_trial_bake_seconds=20)
        pipeline = ModelPipeline(
            stack, "Scorer", platform=platform, project="fraud", model="scorer", gate=gate, deployment=deployment
        )
        return pipeline.config.deployment.model_dump()

    capped = published(new_stack(), {"strategy": "shadow", "bake_seconds": 3600, "shadow": {"min_agreement": 0.9}})
    assert capped["bake_seconds"] == 20 and capped["shadow"]["min_agreement"] == 0.9
    assert published(new_stack(), {"strategy": "ab", "bake_seconds": 5})["bake_seconds"] == 5
    assert published(new_stack(), {"strategy": "blue_green"})["bake_seconds"] == 3600  # unused, left as is


def test_endpoint_settings_that_the_construct_derives_are_refused():
    with pytest.raises(ConfigurationError, match="endpoint.dashboard_name: set by ModelPipeline from its monitoring"):
        _config(new_stack(), gate={"metric": "f1", "threshold": 0.8}, endpoint={"dashboard_name": "mine"})


def test_platform_ref_defaults_to_the_platform_s_slack_secret_so_no_model_silently_loses_slack():
    """From another CDK app, PlatformRef.of(names=...) must publish the secret the platform stack
    refers to by default (mlops/<env>/slack-webhook), not none."""
    stack = new_stack()
    assert _config(stack, gate={"metric": "f1", "threshold": 0.8})["notifications"]["slack_webhook_secret_name"] == (
        "mlops/dev/slack-webhook"
    )
    custom = new_stack()
    PlatformRef.of(custom, names=NAMES, slack_webhook_secret_name="team/slack")
    assert _config(custom, gate={"metric": "f1", "threshold": 0.8})["notifications"]["slack_webhook_secret_name"] == (
        "team/slack"
    )


def test_a_capture_sampling_percentage_sagemaker_refuses_stops_synth_naming_the_field():
    with pytest.raises(ConfigurationError, match=r"data_capture.sampling_percentage: .*100"):
        _config(new_stack(), gate={"metric": "f1", "threshold": 0.8}, data_capture={"sampling_percentage": 120})
