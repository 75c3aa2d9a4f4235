"""Fast in-process tests: payload parsing (fuzzed), hyperparameters, data generation, metrics, manifest."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from template_testing import TEMPLATE

import team_model
from mlops_runtime import contract, hyperparameters, manifest, metrics, payload
from mlops_runtime.hyperparameters import Hyperparameter, HyperparameterError
from team_model import data

FEATURES = team_model.FEATURES


# ----------------------------------------------------------------------------- payload
def test_json_and_csv_give_the_same_matrix():
    rows = data.generate(3, seed=5)[0].tolist()
    from_json = payload.parse(json.dumps(rows).encode(), "application/json", FEATURES, 10)
    from_csv = payload.parse(
        "\n".join(",".join(map(repr, r)) for r in rows).encode(), "text/csv", FEATURES, 10
    )
    from_names = payload.parse(
        json.dumps([dict(zip(FEATURES, r, strict=True)) for r in rows]).encode(),
        "application/json; charset=utf-8",
        FEATURES,
        10,
    )
    assert from_json.shape == (3, len(FEATURES))
    np.testing.assert_array_equal(from_json, from_csv)
    np.testing.assert_array_equal(from_json, from_names)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=14)
        | st.dictionaries(st.sampled_from([*FEATURES, "instances", "x"]), children, max_size=14)
    ),
    max_leaves=40,
)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=json_values)
def test_any_json_document_is_parsed_or_refused_with_a_4xx(document):
    body = json.dumps(document).encode()
    try:
        X = payload.parse(body, "application/json", FEATURES, 100)
    except payload.PayloadError as error:
        assert 400 <= error.status < 500 and error.message
    else:
        assert X.dtype == float and X.shape[1] == len(FEATURES) and np.isfinite(X).all()


@settings(max_examples=250, deadline=None)
@given(body=st.binary(max_size=300), content_type=st.sampled_from(payload.CONTENT_TYPES))
def test_any_bytes_are_parsed_or_refused_with_a_4xx(body, content_type):
    try:
        payload.parse(body, content_type, FEATURES, 100)
    except payload.PayloadError as error:
        assert 400 <= error.status < 500


# ----------------------------------------------------------------------------- hyperparameters
def test_hyperparameters_are_parsed_from_sagemaker_strings():
    values = hyperparameters.resolve(
        {
            "n_estimators": "200",
            "learning_rate": "0.05",
            "fail_training": "False",
            "sagemaker_region": "eu-west-1",
            "_tuning_objective_metric": "validation:f1",
        },
        team_model.HYPERPARAMETERS,
    )
    assert values["n_estimators"] == 200 and values["learning_rate"] == 0.05
    assert values["fail_training"] is False and values["max_depth"] == 3  # default kept


@pytest.mark.parametrize("raw", ["maybe", "2", ""])
def test_boolean_hyperparameters_refuse_anything_but_true_or_false(raw):
    with pytest.raises(HyperparameterError, match="fail_training"):
        Hyperparameter(bool, False).parse("fail_training", raw)


def test_hyperparameter_file_must_be_a_json_object(tmp_path):
    path = tmp_path / "hyperparameters.json"
    assert hyperparameters.read_file(path) == {}  # no file: all defaults
    path.write_text("[1, 2]")
    with pytest.raises(HyperparameterError, match="must hold a JSON object"):
        hyperparameters.read_file(path)


# ----------------------------------------------------------------------------- data
def test_synthetic_data_is_deterministic_and_seeded():
    X1, y1 = data.generate(500)
    X2, y2 = data.generate(500)
    X3, _ = data.generate(500, seed=1)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(X1, X3)
    assert 0.12 < y1.mean() < 0.3  # malicious events are the minority, as in real telemetry


def test_shipped_sample_data_is_what_the_generator_writes(tmp_path):
    data.write_dataset(tmp_path)
    for channel in ("train/train.csv", "test/test.csv"):
        assert (TEMPLATE / "data" / channel).read_text() == (tmp_path / channel).read_text(), (
            f"data/{channel} is stale: regenerate with `python -m team_model.data data`"
        )


# ----------------------------------------------------------------------------- metrics
def test_classification_metrics_use_the_positive_class():
    y_true = np.array([0, 0, 1, 1, 1])
    y_pred = np.array([0, 1, 1, 1, 0])
    values = metrics.compute("classification", y_true, y_pred)
    assert list(values) == ["f1", "precision", "recall", "accuracy"]  # no probabilities: no auc, log_loss
    assert values["precision"] == pytest.approx(2 / 3, abs=1e-6)
    assert values["recall"] == pytest.approx(2 / 3, abs=1e-6)
    assert values["accuracy"] == pytest.approx(0.6)
    assert metrics.confusion_matrix(y_true, y_pred)["matrix"] == [[1, 1], [1, 2]]


def test_auc_and_log_loss_come_from_the_probabilities_of_the_positive_class():
    y_true = np.array([0, 0, 1, 1])
    probabilities = np.array([[0.9, 0.1], [0.4, 0.6], [0.7, 0.3], [0.2, 0.8]])
    values = metrics.compute("classification", y_true, probabilities.argmax(axis=1), probabilities)
    assert list(values) == list(contract.CLASSIFICATION_METRICS)
    assert values["auc"] == pytest.approx(0.75)  # 3 of the 4 (positive, negative) pairs are ordered
    expected_loss = -np.mean(np.log([0.9, 0.4, 0.3, 0.8]))
    assert values["log_loss"] == pytest.approx(expected_loss, abs=1e-6)
    without = metrics.compute("classification", y_true, probabilities.argmax(axis=1))
    assert "auc" not in without and "log_loss" not in without  # predict gave no probabilities


def test_model_quality_matches_the_example_in_sagemakers_documentation():
    """AWS's binary example (model-monitor-model-quality-metrics): confusion matrix
    {"0": {"0": 1, "1": 2}, "1": {"0": 0, "1": 1}} has recall 1.0, precision 1/3, accuracy 0.5, and a
    best constant classifier with recall 1.0, precision 0.25 and accuracy 0.25."""
    from mlops_runtime import model_quality

    y_true, y_pred = np.array([0, 0, 0, 1]), np.array([0, 1, 1, 1])
    report = model_quality.report(y_true, y_pred, None)["binary_classification_metrics"]
    assert report["confusion_matrix"] == {
        "benign": {"benign": 1, "malicious": 2},
        "malicious": {"benign": 0, "malicious": 1},
    }
    documented = {
        "recall": 1.0,
        "precision": 1 / 3,
        "accuracy": 0.5,
        "recall_best_constant_classifier": 1.0,
        "precision_best_constant_classifier": 0.25,
        "accuracy_best_constant_classifier": 0.25,
        "true_positive_rate": 1.0,
        "true_negative_rate": 1 / 3,
        "false_positive_rate": 2 / 3,
        "false_negative_rate": 0.0,
    }
    for name, value in documented.items():
        assert report[name] == {"value": pytest.approx(value), "standard_deviation": "NaN"}, name
    assert report["f1"]["value"] == pytest.approx(0.5)
    assert report["f1_best_constant_classifier"]["value"] == pytest.approx(0.4)  # 2 * 0.25 / 1.25
    assert "auc" not in report and "receiver_operating_characteristic_curve" not in report


def test_regression_metrics_for_teams_that_swap_in_a_regressor():
    values = metrics.compute("regression", np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0]))
    assert list(values) == list(contract.REGRESSION_METRICS)
    assert values["rmse"] == pytest.approx(np.sqrt(4 / 3), abs=1e-6)
    assert values["mse"] == pytest.approx(4 / 3, abs=1e-6)
    assert values["mae"] == pytest.approx(2 / 3, abs=1e-6)
    assert values["r2"] == pytest.approx(-1.0)


def test_metric_lines_match_their_definitions():
    import re

    definitions = {d["Name"]: d["Regex"] for d in contract.metric_definitions("regression")}
    line = contract.metric_line("validation", "mse", 1.5e-7)
    assert float(re.search(definitions["validation:mse"], line).group(1)) == pytest.approx(0.0, abs=1e-6)
    assert (
        float(
            re.search(definitions["validation:r2"], contract.metric_line("validation", "r2", -0.25)).group(1)
        )
        == -0.25
    )


# ----------------------------------------------------------------------------- manifest
def test_manifest_reads_the_platform_variables_and_reports_unset_ones_as_null():
    values = manifest.from_env({"MLOPS_MODEL_NAME": "m", "MLOPS_MODEL_VERSION": "2.0.0+r1", "OTHER": "x"})
    assert values == {
        "model_name": "m",
        "model_version": "2.0.0+r1",
        "training_data": None,
        "trained_at": None,
        "source_commit": None,
    }


def test_custom_attributes_stay_visible_ascii_and_within_sagemakers_limit():
    text = manifest.custom_attributes({"model_name": "a b,c\nd", "model_version": "1" * 2000})
    assert text.startswith("model_name=a_b_c_d,model_version=1")
    assert len(text) == manifest.CUSTOM_ATTRIBUTES_LIMIT
    assert all(33 <= ord(c) <= 126 for c in text)


def test_default_payload_limit_is_sagemakers_6_mb():
    from mlops_runtime import inference

    assert inference.DEFAULT_MAX_PAYLOAD == 6 * 1024 * 1024


@pytest.mark.parametrize("value", ['"0.5"', "true", "[1]", "{}"])
def test_numbers_only_even_where_numpy_would_convert(value):
    # The vectorised fast path must not accept what the contract refuses: "0.5" and true convert
    # to floats in numpy, so the parser checks JSON types before it.
    body = ("[[" + ", ".join(["1"] * 11 + [value]) + "]]").encode()
    with pytest.raises(payload.PayloadError, match="hour_of_day: expected a number"):
        payload.parse(body, "application/json", FEATURES, 10)


def test_record_count_is_checked_before_each_record_is_validated():
    body = ("\n".join(["x"] * 11)).encode()  # 11 bad rows, limit 10: the limit is reported
    with pytest.raises(payload.PayloadError, match="11 records in one request; the limit is 10"):
        payload.parse(body, "text/csv", FEATURES, 10)


# ----------------------------------------------------------------------------- inference app
@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, "application/json"),
        ("", "application/json"),
        ("text/csv", "text/csv"),
        ("text/csv, application/json", "text/csv"),  # equal q: the client's first
        ("text/csv;q=0, application/json", "application/json"),
        ("application/json;q=0.2, text/csv;q=0.8", "text/csv"),
        ("text/*;q=0, text/csv", "text/csv"),  # the more specific range wins (RFC 9110)
        ("*/*;q=0.1, application/jsonlines", "application/jsonlines"),
        ("application/JSON; charset=utf-8", "application/json"),
        ("application/json;q=0", None),
        ("image/png", None),
        ("text/csv;q=abc", None),
    ],
)
def test_accept_negotiation_follows_q_values(accept, chosen):
    from mlops_runtime.inference import negotiate

    assert negotiate(accept) == chosen


def test_a_request_that_breaks_the_model_does_not_fail_the_others_of_its_batch(tmp_path, monkeypatch):
    from mlops_runtime import inference

    class Model:
        pass

    def predict(model, X):
        if (X == 666).any():
            raise ValueError("boom")
        return [{"label": "benign", "probability": float(row[0])} for row in X]

    monkeypatch.setattr(team_model, "load", lambda directory: Model())
    monkeypatch.setattr(team_model, "predict", predict)
    app = inference.InferenceApp(tmp_path, environ={})
    good, bad = np.full((2, len(FEATURES)), 0.25), np.full((1, len(FEATURES)), 666.0)
    responses = app.predict(
        [
            inference.Pending(good, payload.JSON),
            inference.Pending(bad, payload.JSON),
            inference.Pending(good[:1], payload.CSV),
        ]
    )
    assert [r.status for r in responses] == [200, 500, 200]
    assert json.loads(responses[0].body)["predictions"] == [{"label": "benign", "probability": 0.25}] * 2
    assert responses[2].body == b"label,probability\nbenign,0.25\n"
