"""The deployment strategy a team configures (``deployment=`` of ModelPipeline), validated at synth."""

import pytest
from pydantic import ValidationError
from test_pipeline_config import BASE

from mlops_core import names
from mlops_core.pipeline_config import DeploymentSettings, PipelineConfig


def test_blue_green_is_the_default_and_shadow_has_safe_criteria():
    assert PipelineConfig.model_validate(BASE).deployment.strategy == "blue_green"
    shadow = DeploymentSettings(strategy="shadow")
    assert (shadow.bake_seconds, shadow.shadow.sampling_percentage, shadow.shadow.max_error_rate_increase) == (
        3600,
        100,
        0.0,
    )


@pytest.mark.parametrize(
    ("settings", "field", "message"),
    [
        ({"strategy": "canary"}, "strategy", "'blue_green', 'shadow' or 'ab'"),
        ({"strategy": "shadow", "bake_seconds": 0}, "bake_seconds", "greater than or equal to 1"),
        (
            {"strategy": "shadow", "bake_seconds": names.SHADOW_BAKE_LIMIT_SECONDS + 1},
            "bake_seconds",
            "less than or equal to 86400",
        ),
        ({"strategy": "shadow", "shadow": {"sampling_percentage": 0}}, "sampling_percentage", "greater than"),
        ({"strategy": "shadow", "shadow": {"sampling_percentage": 101}}, "sampling_percentage", "less than"),
        ({"strategy": "shadow", "shadow": {"max_error_rate_increase": 1.5}}, "max_error_rate_increase", "less than"),
        ({"strategy": "shadow", "shadow": {"min_invocations": 0}}, "min_invocations", "greater than"),
        ({"strategy": "shadow", "shadow": {"max_latency": 1}}, "max_latency", "Extra inputs"),
        ({"shadow": {"min_invocations": 10}}, "shadow", "applies to strategy 'shadow' only"),
        ({"strategy": "blue_green", "bake_seconds": 60}, "bake_seconds", "applies to strategy 'shadow' or 'ab' only"),
        ({"strategy": "shadow", "ab": {"min_invocations": 10}}, "ab", "applies to strategy 'ab' only"),
        ({"strategy": "ab", "ab": {"traffic_shares": [0.5, 0.1]}}, "traffic_shares", "more than the last"),
        ({"strategy": "ab", "ab": {"traffic_shares": [0.1, 1.0]}}, "traffic_shares", "strictly between 0 and 1"),
        ({"strategy": "ab", "ab": {"traffic_shares": []}}, "traffic_shares", "1 to 10 traffic shares"),
        ({"strategy": "ab", "ab": {"decision_metric": "f1"}}, "decision_metric", "'error_rate' or 'latency_p99'"),
        ({"strategy": "shadow", "shadow": {"min_agreement": 1.2}}, "min_agreement", "less than or equal to 1"),
        ({"strategy": "ab", "ab": {"abort_error_rate": 0}}, "abort_error_rate", "greater than 0"),
        ({"strategy": "ab", "ab": {"abort_min_invocations": 0}}, "abort_min_invocations", "greater than"),
        (
            {"strategy": "shadow", "shadow": {"agreement_tolerance": 0.1}},
            "deployment.shadow.agreement_tolerance",
            "applies to a regressor's values",
        ),
    ],
)
def test_mistakes_are_refused_naming_the_setting(settings, field, message):
    with pytest.raises(ValidationError) as error:
        PipelineConfig.model_validate({**BASE, "deployment": settings})
    text = str(error.value)
    assert field in text and message in text, text


def test_prediction_agreement_needs_the_captured_answers():
    settings = {"strategy": "shadow", "shadow": {"min_agreement": 0.95}}
    assert PipelineConfig.model_validate({**BASE, "deployment": settings}).deployment.shadow.min_agreement == 0.95
    with pytest.raises(ValidationError) as error:
        PipelineConfig.model_validate(
            {**BASE, "deployment": settings, "data_capture": {"enabled": False}, "drift": {"enabled": False}}
        )
    assert "deployment.shadow.min_agreement" in str(error.value) and "data_capture is disabled" in str(error.value)


def test_a_regressor_sets_how_close_two_values_must_be_to_agree():
    regressor = {**BASE, "problem_type": "regression", "gate": {"metric": "rmse", "threshold": 1.0}}
    settings = {"strategy": "shadow", "shadow": {"min_agreement": 0.9, "agreement_tolerance": 0.05}}
    config = PipelineConfig.model_validate({**regressor, "deployment": settings})
    assert config.deployment.shadow.agreement_tolerance == 0.05
