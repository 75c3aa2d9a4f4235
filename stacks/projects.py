"""Discovers model projects: every ``projects/<name>.py`` that defines ``PROJECT`` and ``define``.

A project file is all a model team writes::

    PROJECT = "endpoint-security"

    def define(stack: ProjectStack) -> None:
        ModelPipeline(stack, "ProcessClassifier", platform=stack.platform, project=stack.project, ...)

Optional ``ENVIRONMENTS = ("dev", "stage")`` limits where the project is deployed.

A mistake in a project file, Python or configuration, stops synth naming the file and the line,
without the CDK's (jsii's) stack frames.
"""

from __future__ import annotations

import importlib.util
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from mlops_constructs.validation import ConfigurationError, display_path, typed_prop_error
from mlops_core import names

DEFAULT_PROJECTS_DIR = Path(__file__).resolve().parent.parent / "projects"


class ProjectFileError(ConfigurationError):
    """Python raised an error while a project file was imported or its ``define`` ran."""

    headline = "project file error"


def project_file_error(path: Path, error: BaseException, *, environment: str | None = None) -> ConfigurationError:
    """The error of a project file as its author needs it: the file, the line and its code, the
    exception; no frames of the CDK, jsii or this platform.

    A typed setting that could not be built (``QualityGate(threshold=1.5)``) is reported like any
    other configuration mistake, with its field path."""
    line, code, function = _line_in(path, error)
    where = f"{display_path(path)}{f', line {line}' if line else ''}"
    context = f" (environment {environment!r})" if environment else ""
    if isinstance(error, ValidationError):
        described = typed_prop_error(error, where=where + context)
        if described is not None:
            return described
    message = str(error).strip() if not isinstance(error, SyntaxError) else error.msg
    # jsii appends the JavaScript stack to some messages; the first line says what went wrong.
    message = message.splitlines()[0] if message else ""
    text = f"{where}{f', in {function}' if function else ''}{context}\n"
    if code:
        text += f"    {code}\n"
    return ProjectFileError(text + f"{type(error).__name__}: {message}")


def _line_in(path: Path, error: BaseException) -> tuple[int | None, str, str]:
    """(line, code, function) of the deepest frame of ``error`` in ``path``."""
    if isinstance(error, SyntaxError) and error.filename and Path(error.filename).resolve() == path.resolve():
        return error.lineno, (error.text or "").strip(), ""
    found: tuple[int | None, str, str] = (None, "", "")
    for frame in traceback.extract_tb(error.__traceback__):
        if Path(frame.filename).resolve() == path.resolve():
            found = (frame.lineno, (frame.line or "").strip(), frame.name if frame.name != "<module>" else "")
    return found


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
        raise ConfigurationError(f"{display_path(path)}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ConfigurationError:
        raise
    except Exception as exc:  # noqa: BLE001 - any error of the team's code, named by file and line
        raise project_file_error(path, exc) from exc
    project = getattr(module, "PROJECT", None)
    define = getattr(module, "define", None)
    if not isinstance(project, str) or not callable(define):
        raise ConfigurationError(
            f"{display_path(path)}: a project file defines PROJECT = '<name>' and def define(stack) "
            '(see README, "Add a model")'
        )
    try:
        names.validate_name("PROJECT", project)
    except ValueError as exc:
        raise ConfigurationError(f"{display_path(path)}: {exc}") from exc
    environments = getattr(module, "ENVIRONMENTS", None)
    if environments is not None and (
        isinstance(environments, str) or not all(isinstance(e, str) for e in environments)
    ):
        raise ConfigurationError(
            f"{display_path(path)}: ENVIRONMENTS must be a tuple of environment names, got {environments!r}; "
            'e.g. ENVIRONMENTS = ("dev",) (mind the comma)'
        )
    return ProjectDefinition(
        name=project, source=path, define=define, environments=tuple(environments) if environments else None
    )


def check_environments(projects: list[ProjectDefinition], known: Iterable[str], *, source: str) -> None:
    """A misspelt name in a project's ENVIRONMENTS would silently deploy it nowhere."""
    known = sorted(set(known))
    for project in projects:
        unknown = sorted(set(project.environments or ()) - set(known))
        if unknown:
            raise ConfigurationError(
                f"{display_path(project.source)}: ENVIRONMENTS names unknown environment(s) "
                f"{', '.join(map(repr, unknown))}; the environments in {source} are: {', '.join(known)}"
            )


def discover_projects(
    directory: Path = DEFAULT_PROJECTS_DIR, extra_files: Iterable[Path] = ()
) -> list[ProjectDefinition]:
    """Every project file in ``directory``, then ``extra_files`` (a team's project file kept
    elsewhere, e.g. tried locally before it is merged), each replacing a project of the same name."""
    projects: dict[str, ProjectDefinition] = {}
    for path in sorted(directory.glob("*.py")):
        if path.name.startswith("_"):
            continue
        project = load_project_file(path)
        if project.name in projects:
            first = display_path(projects[project.name].source)
            raise ConfigurationError(
                f"duplicate project: PROJECT={project.name!r} is defined in {first} and {display_path(path)}: "
                "rename one, or put both teams' models in one file"
            )
        projects[project.name] = project
    for path in extra_files:
        project = load_project_file(Path(path))
        projects[project.name] = project
    return sorted(projects.values(), key=lambda project: project.name)
