"""Every bad environment setting stops synth with the environment, the field and the value."""

import copy

import pytest
import yaml

from mlops_constructs.validation import ConfigurationError
from stacks.settings import DEFAULT_SETTINGS_FILE, load_settings, parse_settings

GOOD = {
    "environments": [
        {"name": "dev", "account": "111111111111", "region": "eu-west-1", "alert_emails": ["ml@example.com"]},
        {"name": "prod", "account": "333333333333", "region": "eu-west-1"},
    ]
}


def _with(path: str, value) -> dict:
    data = copy.deepcopy(GOOD)
    target = data["environments"][0]
    *parents, leaf = path.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[leaf] = value
    return data


def test_the_shipped_configuration_is_valid():
    settings = load_settings(DEFAULT_SETTINGS_FILE)
    assert [env.name for env in settings.environments] == ["dev", "stage", "prod"]
    assert all(env.mwaa.webserver_access_mode == "PRIVATE_ONLY" for env in settings.environments)


@pytest.mark.parametrize(
    "path,value,expected",
    [
        ("account", "12345", "environments.0.account: Value error, must be a 12-digit AWS account id"),
        ("account", "12345678901a", "(got '12345678901a')"),
        ("region", "Europe", "environments.0.region"),
        ("alert_emails", ["not-an-email"], "environments.0.alert_emails.0"),
        ("network.vpc_cidr", "8.8.0.0/16", "must be a private range"),
        ("network.vpc_cidr", "10.0.0.0/99", "not an IPv4 CIDR block"),
        ("mwaa.airflow_version", "2.9.2", "environments.0.mwaa.airflow_version"),
        ("mwaa.min_workers", 5, "min_workers=5 is greater than max_workers=2"),
        ("mwaa.environment_class", "mw1.huge", "environments.0.mwaa.environment_class"),
        (
            "log_forwarding",
            {"enabled": True, "endpoint_url": "http://logs.example.com"},
            "must be an https URL",
        ),
        ("name", "Dev", "environments.0.name"),
        ("surprise", 1, "environments.0.surprise: Extra inputs are not permitted"),
    ],
)
def test_bad_values_are_reported_with_field_and_value(path, value, expected):
    with pytest.raises(ConfigurationError) as failure:
        parse_settings(_with(path, value), source="environments.yaml")
    message = str(failure.value).replace("Value error, ", "")
    assert expected.replace("Value error, ", "") in message
    assert "environments.yaml" in message


def test_duplicate_environment_names_are_refused():
    data = copy.deepcopy(GOOD)
    data["environments"][1]["name"] = "dev"
    with pytest.raises(ConfigurationError, match="name='dev' is defined twice"):
        parse_settings(data, source="x")


def test_unknown_environment_names_the_value_and_the_known_ones():
    settings = parse_settings(GOOD, source="x")
    with pytest.raises(ConfigurationError, match=r"unknown environment 'qa'; known environments: dev, prod"):
        settings.select(["qa"])
    assert [e.name for e in settings.select(["prod"])] == ["prod"]
    assert [e.name for e in settings.select([])] == ["dev", "prod"]


def test_malformed_yaml_is_a_configuration_error(tmp_path):
    path = tmp_path / "environments.yaml"
    path.write_text("environments: [\n")
    with pytest.raises(ConfigurationError, match="not valid YAML"):
        load_settings(path)


def test_account_ids_with_leading_zeros_survive_when_quoted(tmp_path):
    path = tmp_path / "environments.yaml"
    path.write_text(
        yaml.safe_dump({"environments": [{"name": "dev", "account": "012345678901", "region": "us-east-1"}]})
    )
    assert load_settings(path).environments[0].account == "012345678901"
