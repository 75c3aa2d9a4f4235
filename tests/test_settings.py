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
        (
            "account",
            "12345",
            "  account: must be a 12-digit AWS account id, quoted: account: \"111111111111\" (got '12345')",
        ),
        ("account", "12345678901a", "(got '12345678901a')"),
        # YAML reads an unquoted id as a number (an unquoted 0123... even as octal).
        (
            "account",
            111111111111,
            "  account: YAML read this account id as a number, which loses leading zeros: quote it",
        ),
        ("region", "Europe", "  region: must be an AWS region such as eu-west-1 (got 'Europe')"),
        ("alert_emails", ["not-an-email"], "  alert_emails[0]: "),
        ("network.vpc_cidr", "8.8.0.0/16", "  network.vpc_cidr: must be a private range"),
        ("network.vpc_cidr", "10.0.0.0/99", "not an IPv4 CIDR block"),
        ("mwaa.airflow_version", "2.9.2", "  mwaa.airflow_version: Input should be '3.3.1' or '2.11.2' (got '2.9.2')"),
        (
            "mwaa.min_workers",
            5,
            "  mwaa.min_workers: min_workers=5 is greater than max_workers=2: lower min_workers or raise max_workers "
            "(got 5)",
        ),
        ("mwaa.environment_class", "mw1.huge", "  mwaa.environment_class: Input should be 'mw1.micro'"),
        (
            "log_forwarding",
            {"enabled": True, "endpoint_url": "http://logs.example.com"},
            "  log_forwarding.endpoint_url: must be an https URL when log forwarding is enabled",
        ),
        ("name", "Dev", "  name: must be 2-10 lowercase letters/digits starting with a letter (got 'Dev')"),
        ("surprise", 1, "  surprise: unknown setting; the settings here are: name, account, region,"),
        ("mwaa.max_worker", 3, "  mwaa.max_worker: unknown setting; did you mean 'max_workers'?"),
    ],
)
def test_bad_values_are_reported_with_file_environment_field_and_value(path, value, expected):
    with pytest.raises(ConfigurationError) as failure:
        parse_settings(_with(path, value), source="config/environments.yaml")
    message = str(failure.value)
    heading = "config/environments.yaml, environment 'dev':\n" if path != "name" else "environment 'Dev':\n"
    assert heading in message
    assert expected in message


def test_errors_of_several_environments_are_grouped_under_each_environment():
    data = copy.deepcopy(GOOD)
    data["environments"][0]["region"] = "Europe"
    data["environments"][1]["account"] = "1"
    message = str(pytest.raises(ConfigurationError, parse_settings, data, source="f.yaml").value)
    assert message == (
        "f.yaml, environment 'dev':\n  region: must be an AWS region such as eu-west-1 (got 'Europe')\n"
        "f.yaml, environment 'prod':\n  account: must be a 12-digit AWS account id, quoted: "
        "account: \"111111111111\" (got '1')"
    )


def test_duplicate_environment_names_are_refused():
    data = copy.deepcopy(GOOD)
    data["environments"][1]["name"] = "dev"
    with pytest.raises(ConfigurationError) as failure:
        parse_settings(data, source="x")
    assert "  name: this environment is defined twice: give each entry its own name (got 'dev')" in str(failure.value)


def test_unknown_environment_names_the_value_and_the_known_ones():
    settings = parse_settings(GOOD, source="x")
    with pytest.raises(
        ConfigurationError, match=r"unknown environment 'qa' in -c environments=qa; the environments in x"
    ):
        settings.select(["qa"], source="x")
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
