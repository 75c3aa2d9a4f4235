#!/usr/bin/env python3
"""The CDK app: every environment in config/environments.yaml, each with its platform stack and
one stack per project file in projects/.

Context (``-c key=value``): ``environments=dev,stage`` to synthesize a subset; ``settings_file``
and ``projects_dir`` to point at other configuration (the tests, benchmarks and local mode do);
``project_files=a.py,b.py`` to add project files kept elsewhere (each replaces the project of the
same name).
"""

from __future__ import annotations

import sys
from pathlib import Path

import aws_cdk as cdk
import yaml
from cdk_nag import AwsSolutionsChecks

from mlops_constructs.validation import ConfigurationError, display_path
from stacks.environment_stage import EnvironmentStage
from stacks.projects import DEFAULT_PROJECTS_DIR, check_environments, discover_projects
from stacks.settings import DEFAULT_SETTINGS_FILE, load_settings


def _context_list(app: cdk.App, key: str) -> list[str]:
    value = app.node.try_get_context(key)
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    return [item.strip() for item in items if item.strip()]


def _deployment_environments() -> set[str]:
    """The names in config/environments.yaml, the ones a project's ENVIRONMENTS refers to, also
    when another settings file (config/local.yaml) is synthesized. Read leniently: that file's own
    mistakes are reported when it is the one synthesized."""
    try:
        data = yaml.safe_load(DEFAULT_SETTINGS_FILE.read_text())
        return {entry["name"] for entry in data["environments"] if isinstance(entry.get("name"), str)}
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError):
        return set()


def build_app(app: cdk.App | None = None, *, nag: bool = True) -> cdk.App:
    app = app or cdk.App()
    settings_file = Path(app.node.try_get_context("settings_file") or DEFAULT_SETTINGS_FILE)
    settings = load_settings(settings_file)
    projects = discover_projects(
        Path(app.node.try_get_context("projects_dir") or DEFAULT_PROJECTS_DIR),
        [Path(path) for path in _context_list(app, "project_files")],
    )
    known = {environment.name for environment in settings.environments} | _deployment_environments()
    files = dict.fromkeys(display_path(path) for path in (settings_file, DEFAULT_SETTINGS_FILE))
    check_environments(projects, known, source=" and ".join(files))
    for environment in settings.select(_context_list(app, "environments"), source=display_path(settings_file)):
        EnvironmentStage(app, environment.name, settings=environment, projects=projects)
    if nag:
        # Unacknowledged AwsSolutions findings fail synth; acknowledgements live next to the
        # construct that causes them, each with its reason.
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


def main() -> None:
    try:
        app = build_app()
    except ConfigurationError as exc:
        print(f"{exc.headline}: {exc}", file=sys.stderr)
        sys.exit(1)
    app.synth()


if __name__ == "__main__":
    main()
