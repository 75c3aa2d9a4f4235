"""Two syntheses of the app (every environment), shared by the stack tests:

- ``synthesized``: the platform with the fixture project (``fixture_projects/``), never the
  projects in ``projects/``. Snapshots and the platform's wiring are tested on it, so a model
  team's merge request adding a model changes no snapshot and no test.
- ``synthesized_projects``: the platform with whatever is in ``projects/``. Properties every
  project must satisfy (cdk-nag, cfn-lint, checkov, CloudFormation's limits) run over it too.
"""

from __future__ import annotations

import pytest
from stack_apps import FIXTURE_PROJECTS, SynthesizedApp, synthesize

from stacks.projects import DEFAULT_PROJECTS_DIR


@pytest.fixture(scope="session")
def synthesized() -> SynthesizedApp:
    return synthesize(FIXTURE_PROJECTS)


@pytest.fixture(scope="session")
def synthesized_projects() -> SynthesizedApp:
    return synthesize(DEFAULT_PROJECTS_DIR)


@pytest.fixture(params=["fixture project", "projects/"], scope="session")
def every_app(request: pytest.FixtureRequest) -> SynthesizedApp:
    """Both syntheses: a property every stack must have holds for the platform, the fixture project
    and every project a team has added."""
    return request.getfixturevalue("synthesized" if request.param == "fixture project" else "synthesized_projects")
