"""Environment configuration: one file (config/environments.yaml), validated before any synth.

A mistake fails ``cdk synth`` with the environment, the field and the value, instead of
surfacing as a failed CloudFormation deployment half an hour later.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    HttpUrl,
    ValidationError,
    field_validator,
    model_validator,
)

from mlops_constructs.dag_bundle import SUPPORTED_AIRFLOW_VERSIONS
from mlops_constructs.validation import ConfigurationError, describe, display_path
from mlops_core.pipeline_config import invalid
from mlops_core.platform_names import ENVIRONMENT_PATTERN, PlatformNames

DEFAULT_SETTINGS_FILE = Path(__file__).resolve().parent.parent / "config" / "environments.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NetworkSettings(_Strict):
    vpc_cidr: str = "10.40.0.0/16"
    nat_gateways: int = Field(1, ge=1, le=2)
    # MWAA needs two subnets in different zones; default: the region's "a" and "b" zones.
    availability_zone_suffixes: tuple[str, str] = ("a", "b")

    @field_validator("vpc_cidr")
    @classmethod
    def _private_cidr(cls, value: str) -> str:
        try:
            network = ipaddress.IPv4Network(value)
        except ValueError as exc:
            raise ValueError(f"not an IPv4 CIDR block: {exc}") from exc
        if not network.is_private or not 16 <= network.prefixlen <= 20:
            raise ValueError("must be a private range between /16 and /20 (two /20 private subnets are carved from it)")
        return value


class MwaaSettings(_Strict):
    airflow_version: Literal[SUPPORTED_AIRFLOW_VERSIONS] = "3.3.1"  # type: ignore[valid-type]
    environment_class: Literal["mw1.micro", "mw1.small", "mw1.medium", "mw1.large", "mw1.xlarge", "mw1.2xlarge"] = (
        "mw1.small"
    )
    min_workers: int = Field(1, ge=1, le=25)
    max_workers: int = Field(2, ge=1, le=25)
    webserver_access_mode: Literal["PRIVATE_ONLY", "PUBLIC_ONLY"] = "PRIVATE_ONLY"

    @model_validator(mode="after")
    def _min_not_above_max(self) -> MwaaSettings:
        if self.min_workers > self.max_workers:
            raise invalid(
                ("min_workers",),
                f"min_workers={self.min_workers} is greater than max_workers={self.max_workers}: "
                "lower min_workers or raise max_workers",
                self.min_workers,
            )
        return self


class LogForwardingSettings(_Strict):
    enabled: bool = False
    endpoint_url: HttpUrl | None = None
    destination_name: str = "Wavefront"
    access_key_secret_name: str | None = None

    @model_validator(mode="after")
    def _https_endpoint_when_enabled(self) -> LogForwardingSettings:
        if self.enabled and (self.endpoint_url is None or self.endpoint_url.scheme != "https"):
            raise invalid(
                ("endpoint_url",),
                "must be an https URL when log forwarding is enabled (enabled: true)",
                None if self.endpoint_url is None else str(self.endpoint_url),
            )
        return self


class CiSettings(_Strict):
    """Where GitLab CI runs from; its jobs assume roles through OIDC (no keys)."""

    gitlab_url: HttpUrl = HttpUrl("https://gitlab.com")
    # The MLOps project running ci/mlops-pipeline.yml (builds, versions, triggers training).
    mlops_project_path: str = Field("ml-platform/mlops", pattern=r"^[\w.-]+(/[\w.-]+)+$")
    # This repository's project (runs .gitlab-ci.yml: diff and deploy).
    infrastructure_project_path: str = Field("ml-platform/mlops-platform", pattern=r"^[\w.-]+(/[\w.-]+)+$")
    # One OIDC provider per account and URL: set this when another environment in the same
    # account already created it.
    existing_oidc_provider_arn: str | None = None


class EnvironmentSettings(_Strict):
    name: str
    account: str
    region: str
    network: NetworkSettings = Field(default_factory=NetworkSettings)
    mwaa: MwaaSettings = Field(default_factory=MwaaSettings)
    alert_emails: tuple[EmailStr, ...] = ()
    slack_webhook_secret_name: str | None = None
    log_forwarding: LogForwardingSettings = Field(default_factory=LogForwardingSettings)
    ci: CiSettings = Field(default_factory=CiSettings)
    # New accounts cannot reserve Lambda concurrency (quota 10); set to null there.
    trigger_reserved_concurrency: int | None = Field(5, ge=1)
    termination_protection: bool = False
    # Every project is deployed here whatever its ENVIRONMENTS (the local environment: a team tries
    # any model on its machine before it is deployed anywhere).
    all_projects: bool = False
    # The longest a shadow or A/B trial bakes here, whatever the models configure (the local
    # environment: a trial of `make demo` takes seconds, not the hour a model asks for on AWS).
    max_trial_bake_seconds: int | None = Field(None, ge=1)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not ENVIRONMENT_PATTERN.fullmatch(value):
            raise ValueError("must be 2-10 lowercase letters/digits starting with a letter")
        return value

    @field_validator("account", mode="before")
    @classmethod
    def _account_is_quoted(cls, value: object) -> object:
        # YAML reads an unquoted 012345678901 as a number (and drops the leading zero).
        if isinstance(value, int) and not isinstance(value, bool):
            raise ValueError(
                "YAML read this account id as a number, which loses leading zeros: "
                'quote it, e.g. account: "012345678901"'
            )
        return value

    @field_validator("account")
    @classmethod
    def _account(cls, value: str) -> str:
        if not (len(value) == 12 and value.isdigit()):
            raise ValueError('must be a 12-digit AWS account id, quoted: account: "111111111111"')
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        import re

        if not re.fullmatch(r"[a-z]{2}(-gov)?-[a-z]+-\d", value):
            raise ValueError("must be an AWS region such as eu-west-1")
        return value

    @property
    def names(self) -> PlatformNames:
        return PlatformNames(environment=self.name, account=self.account, region=self.region)

    @property
    def availability_zones(self) -> list[str]:
        return [f"{self.region}{suffix}" for suffix in self.network.availability_zone_suffixes]

    @property
    def slack_secret(self) -> str:
        return self.slack_webhook_secret_name or self.names.slack_webhook_secret


class Settings(_Strict):
    environments: tuple[EnvironmentSettings, ...]

    @model_validator(mode="after")
    def _unique(self) -> Settings:
        seen: set[str] = set()
        for index, env in enumerate(self.environments):
            if env.name in seen:
                raise invalid(
                    ("environments", index, "name"),
                    "this environment is defined twice: give each entry its own name",
                    env.name,
                )
            seen.add(env.name)
        return self

    def select(self, wanted: list[str] | None, *, source: str = "the settings file") -> list[EnvironmentSettings]:
        """The environments to synthesize; all of them when ``wanted`` is empty."""
        known = {env.name: env for env in self.environments}
        if not wanted:
            return list(self.environments)
        unknown = [name for name in wanted if name not in known]
        if unknown:
            names = ", ".join(repr(u) for u in unknown)
            raise ConfigurationError(
                f"unknown environment {names} in -c environments={','.join(wanted)}; the environments in "
                f"{source} are: {', '.join(sorted(known))}"
            )
        return [known[name] for name in wanted]


def parse_settings(data: object, *, source: str) -> Settings:
    def environment(loc: tuple[str | int, ...]) -> tuple[str, tuple[str | int, ...]]:
        if len(loc) >= 2 and loc[0] == "environments" and isinstance(loc[1], int):
            entries = data.get("environments") if isinstance(data, dict) else None
            entry = entries[loc[1]] if isinstance(entries, list) and loc[1] < len(entries) else None
            name = entry.get("name") if isinstance(entry, dict) else None
            heading = f", environment {name!r}" if isinstance(name, str) else f", environment number {loc[1] + 1}"
            return heading, loc[2:]
        return "", loc

    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise describe(exc, where=source, model=Settings, section=environment) from exc


def load_settings(path: Path = DEFAULT_SETTINGS_FILE) -> Settings:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{display_path(path)} is not valid YAML: {exc}") from exc
    return parse_settings(data, source=display_path(path))
