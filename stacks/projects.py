"""Discovers model projects: every ``projects/<name>.py`` that defines ``PROJECT`` and ``define``.

A project file is all a model team writes::

    PROJECT = "endpoint-security"

    def define(stack: ProjectStack) -> None:
        ModelPipeline(stack, "ProcessClassifier", platform=stack.platform, project=stack.project, ...)

Optional ``ENVIRONMENTS = ("dev", "stage")`` limits where the project is deployed.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlops_constructs.validation import ConfigurationError
from mlops_core import names

DEFAULT_PROJECTS_DIR = Path(__file__).resolve().parent.parent / "projects"


@dataclass(frozen=True)
class ProjectDefinition:
    name: str
    source: Path
    define: Callable
    environments: tuple[str, ...] | None = None

    def deployed_to(self, environment: str) -> bool:
        return self.environments is None or environment in self.environments


def load_project_file(path: Path) -> ProjectDefinition:
    spec = importlib.util.spec_from_file_location(f"mlops_projects.{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ConfigurationError(f"{path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    project = getattr(module, "PROJECT", None)
    define = getattr(module, "define", None)
    if not isinstance(project, str) or not callable(define):
        raise ConfigurationError(f"{path}: a project file defines PROJECT = '<name>' and def define(stack)")
    try:
        names.validate_name("PROJECT", project)
    except ValueError as exc:
        raise ConfigurationError(f"{path}: {exc}") from exc
    environments = getattr(module, "ENVIRONMENTS", None)
    if environments is not None and (
        isinstance(environments, str) or not all(isinstance(e, str) for e in environments)
    ):
        raise ConfigurationError(f"{path}: ENVIRONMENTS must be a tuple of environment names, got {environments!r}")
    return ProjectDefinition(
        name=project, source=path, define=define, environments=tuple(environments) if environments else None
    )


def check_environments(projects: list[ProjectDefinition], known: list[str]) -> None:
    """A misspelt name in a project's ENVIRONMENTS would silently deploy it nowhere."""
    for project in projects:
        unknown = sorted(set(project.environments or ()) - set(known))
        if unknown:
            raise ConfigurationError(
                f"{project.source}: ENVIRONMENTS names unknown environment(s) {', '.join(map(repr, unknown))}; "
                f"known environments: {', '.join(sorted(known))}"
            )


def discover_projects(directory: Path = DEFAULT_PROJECTS_DIR) -> list[ProjectDefinition]:
    projects: dict[str, ProjectDefinition] = {}
    for path in sorted(directory.glob("*.py")):
        if path.name.startswith("_"):
            continue
        project = load_project_file(path)
        if project.name in projects:
            raise ConfigurationError(
                f"duplicate project: PROJECT={project.name!r} is defined in {projects[project.name].source} and {path}"
            )
        projects[project.name] = project
    return list(projects.values())
