#!/usr/bin/env python3
"""The CDK app: every environment in config/environments.yaml, each with its platform stack and
one stack per project file in projects/.

Context (``-c key=value``): ``environments=dev,stage`` to synthesize a subset; ``settings_file``
and ``projects_dir`` to point at other configuration (the tests and benchmarks do).
"""

from __future__ import annotations

import sys
from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from mlops_constructs.validation import ConfigurationError
from stacks.environment_stage import EnvironmentStage
from stacks.projects import DEFAULT_PROJECTS_DIR, check_environments, discover_projects
from stacks.settings import DEFAULT_SETTINGS_FILE, load_settings


def _context_list(app: cdk.App, key: str) -> list[str]:
    value = app.node.try_get_context(key)
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    return [item.strip() for item in items if item.strip()]


def build_app(app: cdk.App | None = None, *, nag: bool = True) -> cdk.App:
    app = app or cdk.App()
    settings = load_settings(Path(app.node.try_get_context("settings_file") or DEFAULT_SETTINGS_FILE))
    projects = discover_projects(Path(app.node.try_get_context("projects_dir") or DEFAULT_PROJECTS_DIR))
    check_environments(projects, [environment.name for environment in settings.environments])
    for environment in settings.select(_context_list(app, "environments")):
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
        print(f"configuration error: {exc}", file=sys.stderr)
        sys.exit(1)
    app.synth()


if __name__ == "__main__":
    main()
