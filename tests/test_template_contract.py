"""The model template cannot import mlops_core (teams copy it into their own repositories), so it
keeps its own copy of the names the platform relies on. These tests fail when the two drift apart."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from mlops_core import names, pipeline_config

CONTRACT = Path(__file__).resolve().parents[1] / "model_template" / "src" / "mlops_runtime" / "contract.py"


def _template_contract():
    spec = importlib.util.spec_from_file_location("template_contract", CONTRACT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_manifest_environment_variables_match_the_deployment_dag():
    assert _template_contract().MANIFEST_ENV == names.MANIFEST_ENV


def test_evaluation_outputs_match_what_the_training_dag_reads_and_registers():
    contract = _template_contract()
    assert contract.EVALUATION_FILE == names.EVALUATION_FILE
    assert contract.MODEL_QUALITY_FILE == names.MODEL_QUALITY_FILE
    assert contract.CONFUSION_MATRIX_FILE == names.CONFUSION_MATRIX_FILE


def test_served_content_types_match_the_model_package():
    contract = _template_contract()
    assert contract.REQUEST_CONTENT_TYPES == names.SUPPORTED_CONTENT_TYPES
    assert contract.RESPONSE_CONTENT_TYPES == names.SUPPORTED_RESPONSE_MIME_TYPES


def test_evaluation_metric_names_match_the_quality_gate():
    contract = _template_contract()
    assert set(contract.CLASSIFICATION_METRICS) == set(pipeline_config.CLASSIFICATION_METRICS)
    assert set(contract.REGRESSION_METRICS) == set(pipeline_config.REGRESSION_METRICS)


def test_every_gate_metric_is_scraped_from_training_logs():
    contract = _template_contract()
    for problem_type, metrics in (
        ("classification", pipeline_config.CLASSIFICATION_METRICS),
        ("regression", pipeline_config.REGRESSION_METRICS),
    ):
        scraped = {d["Name"] for d in contract.metric_definitions(problem_type)}
        assert {f"validation:{m}" for m in metrics} <= scraped


def test_drift_files_and_metrics_match_what_the_platform_registers_and_publishes():
    contract = _template_contract()
    assert contract.BASELINE_STATISTICS_FILE == names.BASELINE_STATISTICS_FILE
    assert contract.BASELINE_CONSTRAINTS_FILE == names.BASELINE_CONSTRAINTS_FILE
    assert contract.VIOLATIONS_FILE == names.VIOLATIONS_FILE
    assert contract.feature_drift_metric("cmdline_length") == names.feature_drift_metric("cmdline_length")
    assert contract.COMPARISON_THRESHOLD_ENV == names.DRIFT_COMPARISON_THRESHOLD_ENV
    assert contract.CAPTURE_VARIANTS_ENV == names.DRIFT_CAPTURE_VARIANTS_ENV
    assert contract.METRICS_COPY_FILE == names.DRIFT_METRICS_COPY_FILE
