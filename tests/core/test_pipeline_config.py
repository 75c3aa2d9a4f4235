import json
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from mlops_core import names
from mlops_core.pipeline_config import PipelineConfig, Retraining, dumps, list_pipeline_configs, load_pipeline_config

BASE = {
    "environment": "dev",
    "project": "p",
    "model": "m",
    "image_repository_uri": "1.dkr.ecr.eu-west-1.amazonaws.com/p/m",
    "sagemaker_role_arn": "arn:aws:iam::1:role/r",
    "data_bucket": "d",
    "artifact_bucket": "a",
    "gate": {"metric": "f1", "threshold": 0.8},
    "notifications": {"sns_topic_arn": "arn:aws:sns:eu-west-1:1:t"},
}


def test_gate_direction_follows_the_metric():
    assert PipelineConfig.model_validate(BASE).gate.greater_is_better
    regression = {**BASE, "problem_type": "regression", "gate": {"metric": "mse", "threshold": 0.2}}
    assert not PipelineConfig.model_validate(regression).gate.greater_is_better


def test_unknown_fields_are_refused():
    with pytest.raises(ValidationError, match="surprise"):
        PipelineConfig.model_validate({**BASE, "surprise": 1})


def test_dags_read_what_the_construct_publishes(tmp_path):
    config = PipelineConfig.model_validate(BASE)
    path = tmp_path / names.pipeline_config_path("p", "m")
    path.parent.mkdir(parents=True)
    path.write_text(dumps(config))
    assert load_pipeline_config(tmp_path, "p", "m") == config
    assert list_pipeline_configs(tmp_path) == [config]
    assert json.loads(path.read_text())["endpoint"]["autoscaling"]["min_capacity"] == 1


def test_missing_configuration_names_the_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="project='p' model='x'"):
        load_pipeline_config(tmp_path, "p", "x")


@pytest.mark.parametrize(
    ("interval_days", "age", "due"),
    [
        (1, timedelta(hours=23, minutes=40), True),  # trained 00:20 yesterday, the DAG runs at midnight
        (1, timedelta(hours=6), False),  # trained this morning by hand
        (7, timedelta(days=6, hours=23), True),
        (7, timedelta(days=3), False),
    ],
)
def test_retraining_is_due_once_the_newest_run_is_interval_days_old(interval_days, age, due):
    now = datetime(2026, 12, 4, tzinfo=UTC)
    assert Retraining(interval_days=interval_days).is_due(now - age, now) is due


def test_retraining_disabled_is_never_due_and_a_model_never_trained_always_is():
    now = datetime(2026, 12, 4, tzinfo=UTC)
    assert not Retraining(enabled=False).is_due(None, now)
    assert Retraining().is_due(None, now)


def test_retraining_interval_is_validated_naming_the_field():
    with pytest.raises(ValidationError, match="retraining.interval_days"):
        PipelineConfig.model_validate({**BASE, "retraining": {"interval_days": 0}})


def test_several_training_instances_are_refused_with_the_reason():
    # The model template trains on one host; more instances would each train the same model.
    assert PipelineConfig.model_validate({**BASE, "training": {"instance_count": 1}}).training.instance_count == 1
    with pytest.raises(ValidationError, match=r"training.instance_count[\s\S]*every extra instance would train"):
        PipelineConfig.model_validate({**BASE, "training": {"instance_count": 2}})


def test_data_capture_is_on_by_default_under_the_models_artifact_prefix():
    config = PipelineConfig.model_validate(BASE)
    assert (config.data_capture.enabled, config.data_capture.sampling_percentage) == (True, 100)
    assert config.data_capture_uri == "s3://a/p/m/data-capture"


@pytest.mark.parametrize("percentage", [-1, 101])
def test_capture_sampling_outside_sagemakers_range_is_refused(percentage):
    # DataCaptureConfig.InitialSamplingPercentage: valid range 0 to 100 (SageMaker API reference).
    with pytest.raises(ValidationError, match="data_capture.sampling_percentage"):
        PipelineConfig.model_validate({**BASE, "data_capture": {"sampling_percentage": percentage}})


def test_capturing_zero_percent_is_refused_unless_capture_is_off():
    with pytest.raises(ValidationError, match=r"data_capture.sampling_percentage[\s\S]*enabled=False"):
        PipelineConfig.model_validate({**BASE, "data_capture": {"sampling_percentage": 0}})
    off = PipelineConfig.model_validate(
        {**BASE, "data_capture": {"enabled": False, "sampling_percentage": 0}, "drift": {"enabled": False}}
    )
    assert not off.data_capture.enabled


def test_drift_checks_need_captured_traffic():
    with pytest.raises(ValidationError, match=r"drift.enabled[\s\S]*data_capture is disabled"):
        PipelineConfig.model_validate({**BASE, "data_capture": {"enabled": False}})


@pytest.mark.parametrize(
    ("field", "value"),
    [("comparison_threshold", 0), ("comparison_threshold", 1.5), ("check_interval_hours", 0), ("cool_down_hours", 0)],
)
def test_drift_settings_outside_their_range_are_refused(field, value):
    with pytest.raises(ValidationError, match=f"drift.{field}"):
        PipelineConfig.model_validate({**BASE, "drift": {field: value}})
