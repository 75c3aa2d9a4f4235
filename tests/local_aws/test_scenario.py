"""The scenario document: validation, merging, rule matching (no server needed)."""

from __future__ import annotations

import pytest

from local_aws.scenario import DEFAULT_SCENARIO, Scenario, ScenarioError, deep_merge, rule_matches, validate


def test_rule_needs_every_condition_to_hold():
    when = {"name_contains": "retrain", "hyperparameters": {"fail": "true"}, "image_contains": ":2."}
    matching = {
        "name": "m-retrain-1",
        "hyperparameters": {"fail": "true", "epochs": "3"},
        "image": "repo/m:2.0.0",
    }
    assert rule_matches(when, **matching)
    assert not rule_matches(when, **{**matching, "name": "m-first"})
    assert not rule_matches(when, **{**matching, "hyperparameters": {"fail": "false"}})
    assert not rule_matches(when, **{**matching, "image": "repo/m:1.0.0"})
    assert rule_matches({}, name="anything")


def test_hyperparameter_values_compare_as_strings():
    # SageMaker hyperparameters are strings on the wire; a scenario may write numbers.
    assert rule_matches({"hyperparameters": {"epochs": 3}}, name="n", hyperparameters={"epochs": "3"})


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"training": {"delay": 1}}, "training.delay"),
        ({"endpoints": {"fail_next_update": 1}}, "fail_next_update"),
        ({"training": {"rules": [{"fail": "x"}]}}, "'when'"),
        ({"training": {"rules": [{"when": {}, "files": {}}]}}, "files"),
    ],
)
def test_validation_names_the_bad_key(patch, message):
    with pytest.raises(ScenarioError, match=message):
        validate(patch)


def test_free_form_documents_accept_any_keys():
    validate({"processing": {"files": {"anything.json": {"x": 1}}}, "runner": {"my_setting": True}})


def test_merge_replaces_file_documents_but_merges_settings():
    merged = deep_merge(DEFAULT_SCENARIO, {"processing": {"files": {"evaluation.json": {"metrics": {"mse": 1}}}}})
    assert merged["processing"]["files"]["evaluation.json"] == {"metrics": {"mse": 1}}
    assert merged["processing"]["delay_seconds"] == DEFAULT_SCENARIO["processing"]["delay_seconds"]


def test_counters_are_consumed_once():
    scenario = Scenario({"endpoints": {"fail_next_updates": 1}})
    assert scenario.take_counter("endpoints", "fail_next_updates")
    assert not scenario.take_counter("endpoints", "fail_next_updates")
