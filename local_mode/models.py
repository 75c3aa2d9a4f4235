"""The models local mode runs, and where each one's code comes from.

Every ModelPipeline of the local environment is provisioned; local mode runs the selected ones
(all by default, or ``--model <project>/<model>``). A model's image is stood in for by a model
repository on disk: the platform's ``model_template/`` unless a team points local mode at its
own repository (``--model-repo PATH``), whose code, sample data (``data/train``, ``data/test``)
and requirements are then used. Which model a repository is comes from its ``.gitlab-ci.yml``
(``MODEL_PROJECT``/``MODEL_NAME``, as its CI release job sends them) unless ``--model`` says.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlops_core import names

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "model_template"
# The main virtualenv has the template's requirements (requirements/model-template.txt).
TEMPLATE_REQUIREMENTS = TEMPLATE / "requirements.txt"
ALL = "all"


class ModelSelectionError(ValueError):
    """The models or repositories asked for do not fit the local environment; says what to do."""

    headline = "cannot run"


@dataclass(frozen=True)
class ModelSource:
    """A model repository as local mode runs it: its code, its data, the Python with its requirements."""

    path: Path
    python: str
    problem_type: str
    features: tuple[str, ...]
    label: str

    def sample_files(self) -> list[Path]:
        return sorted((self.path / "data").glob("*/*.csv"))

    def sample_records(self, count: int = 2) -> str:
        """The first ``count`` test records as the endpoint takes them: CSV, features in order, no label."""
        tests = sorted((self.path / "data" / "test").glob("*.csv"))
        if not tests:
            raise ModelSelectionError(f"{self.path}/data/test/ has no CSV file to send to the endpoint")
        rows = list(csv.DictReader(io.StringIO(tests[0].read_text())))[:count]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        for row in rows:
            writer.writerow([row[feature] for feature in self.features])
        return out.getvalue()


@dataclass(frozen=True)
class LocalModel:
    """One ModelPipeline of the local environment that local mode runs."""

    config: dict[str, Any]  # its resolved pipeline configuration (pipeline.json)
    source: ModelSource

    @property
    def project(self) -> str:
        return self.config["project"]

    @property
    def model(self) -> str:
        return self.config["model"]

    @property
    def key(self) -> str:
        return f"{self.project}/{self.model}"

    @property
    def endpoint_name(self) -> str:
        return names.endpoint_name(self.project, self.model)

    @property
    def repository(self) -> str:
        return names.ecr_repository_name(self.project, self.model)


def parse_model_repos(values: Sequence[str]) -> dict[str | None, Path]:
    """``PATH`` (the selected model's repository) or ``<project>/<model>=PATH``, repeatable."""
    repos: dict[str | None, Path] = {}
    for value in values:
        key, separator, path = value.partition("=")
        model, target = (key, path) if separator and "/" in key else (None, value)
        repos[model] = Path(target).expanduser().resolve()
    return repos


def model_of_repository(path: Path) -> str | None:
    """``<project>/<model>`` from the repository's ``.gitlab-ci.yml`` (the ``.model`` job template's
    MODEL_PROJECT and MODEL_NAME, which its release job sends to the platform)."""
    ci_file = path / ".gitlab-ci.yml"
    try:
        variables = (yaml.safe_load(ci_file.read_text()) or {}).get(".model", {}).get("variables", {})
    except (OSError, yaml.YAMLError, AttributeError):
        return None
    project, model = variables.get("MODEL_PROJECT"), variables.get("MODEL_NAME")
    return f"{project}/{model}" if project and model else None


def select(
    configs: Sequence[Mapping[str, Any]], wanted: Sequence[str], repos: Mapping[str | None, Path]
) -> list[tuple[Mapping[str, Any], Path]]:
    """The configurations to run, each with its model repository (``model_template/`` by default)."""
    by_key = {f"{c['project']}/{c['model']}": c for c in configs}
    known = ", ".join(sorted(by_key)) or "none"
    wanted = [w for w in wanted if w]
    unnamed = repos.get(None)
    if unnamed is not None and not wanted:
        inferred = model_of_repository(unnamed)
        if inferred is None:
            raise ModelSelectionError(
                f"which model is {unnamed}? Its .gitlab-ci.yml sets no MODEL_PROJECT/MODEL_NAME: "
                f"pass MODEL=<project>/<model> (the local environment has: {known})"
            )
        if inferred not in by_key:
            raise ModelSelectionError(
                f"{unnamed}/.gitlab-ci.yml names the model {inferred}, but no ModelPipeline in projects/ defines "
                f'it (the local environment has: {known}). Add it to a project file (README, "Add a model"), '
                "try a project file of your own with PROJECT_FILE=<path>, or pass MODEL=<project>/<model>"
            )
        wanted = [inferred]
    if not wanted or wanted == [ALL]:
        wanted = sorted(by_key)
    unknown = [w for w in wanted if w not in by_key]
    if unknown:
        raise ModelSelectionError(
            f"no ModelPipeline {', '.join(unknown)} in the local environment; it has: {known} "
            "(MODEL=<project>/<model>, or MODEL=all)"
        )
    if unnamed is not None and len(wanted) != 1:
        raise ModelSelectionError(
            f"MODEL_REPO={unnamed} is the repository of which of {', '.join(wanted)}? "
            "Pass MODEL=<project>/<model>, or MODEL_REPO=<project>/<model>=<path> for each"
        )
    stray = [key for key in repos if key is not None and key not in wanted]
    if stray:
        raise ModelSelectionError(f"MODEL_REPO names {', '.join(stray)}, which is not run (MODEL={','.join(wanted)})")
    return [(by_key[key], repos.get(key) or unnamed or TEMPLATE) for key in wanted]


def python_for(repository: Path, *, say=print) -> str:
    """A Python with the repository's requirements: this virtualenv when they are the template's,
    else a virtualenv of their own (.venvs/model-<digest>, built once with uv)."""
    requirements = repository / "requirements.txt"
    if not requirements.is_file() or _pins(requirements) == _pins(TEMPLATE_REQUIREMENTS):
        return sys.executable
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:12]
    name = f"model-{digest}"
    python = REPO / ".venvs" / name / "bin" / "python"
    say(f"installing {requirements} into .venvs/{name} (once)")
    done = subprocess.run(  # noqa: S603 - our own script
        [str(REPO / "scripts" / "tool_venv.sh"), name, str(requirements)], capture_output=True, text=True
    )
    if done.returncode != 0 or not python.exists():
        raise ModelSelectionError(f"cannot install {requirements}:\n{done.stdout}{done.stderr}")
    return str(python)


def _pins(requirements: Path) -> set[str]:
    lines = (line.split("#", 1)[0].strip() for line in requirements.read_text().splitlines())
    return {line.lower().replace(" ", "") for line in lines if line}


@functools.cache
def inspect_source(path: Path, python: str) -> ModelSource:
    """What the repository's own code says it is (``team_model``'s names), read by its own Python."""
    if not (path / "pyproject.toml").is_file() or not (path / "src" / "team_model").is_dir():
        raise ModelSelectionError(
            f"{path} is not a model repository made from the template (no pyproject.toml or src/team_model/)"
        )
    code = (
        "import json, team_model as m; "
        "print(json.dumps({'problem_type': m.PROBLEM_TYPE, 'features': list(m.FEATURES), 'label': m.LABEL}))"
    )
    env = {**os.environ, "PYTHONPATH": str(path / "src")}
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, env=env, cwd=path, timeout=120)  # noqa: S603
    if done.returncode != 0:
        raise ModelSelectionError(f"cannot import team_model from {path}/src:\n{done.stderr.strip()[-2000:]}")
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    source = ModelSource(
        path=path,
        python=python,
        problem_type=facts["problem_type"],
        features=tuple(facts["features"]),
        label=facts["label"],
    )
    if not (path / "data" / "train").is_dir() or not source.sample_files():
        raise ModelSelectionError(
            f"{path}/data/ has no sample data: the pipeline trains on data/train/*.csv and evaluates on "
            "data/test/*.csv (python -m team_model.data data writes the template's)"
        )
    return source


def resolve(
    configs: Sequence[Mapping[str, Any]], wanted: Sequence[str], repos: Mapping[str | None, Path], *, say=print
) -> tuple[list[LocalModel], list[str]]:
    """The selected models with their repositories, checked against their configuration, and the
    models left out: when every model runs (no MODEL), one the template cannot stand in for (a
    regressor) and whose repository was not given is left out, saying how to run it."""
    models, skipped = [], []
    pythons: dict[str, str] = {}
    every = not [w for w in wanted if w and w != ALL] and None not in repos
    for config, path in select(configs, wanted, repos):
        key = f"{config['project']}/{config['model']}"
        python = python_for(path, say=say)
        source = inspect_source(path, python)
        if source.problem_type != config["problem_type"]:
            if path == TEMPLATE and every:
                skipped.append(
                    f"{key}: a {config['problem_type']} model, which the template ({source.problem_type}) cannot "
                    f"stand in for; run it with MODEL={key} MODEL_REPO=<its repository>"
                )
                continue
            hint = (
                "pass its repository with MODEL_REPO=<path>"
                if path == TEMPLATE
                else "fix problem_type in its ModelPipeline or PROBLEM_TYPE in the repository"
            )
            raise ModelSelectionError(
                f"{key} is a {config['problem_type']} model (problem_type in its ModelPipeline), but {path} is a "
                f"{source.problem_type} model (team_model.PROBLEM_TYPE): {hint}"
            )
        pythons[key] = python
        models.append(LocalModel(config=dict(config), source=source))
    if not models:
        raise ModelSelectionError("no model to run:\n  " + "\n  ".join(skipped or ["the local environment has none"]))
    if len(set(pythons.values())) > 1:
        raise ModelSelectionError(
            "these models need different requirements, which local mode runs in one Python: "
            + "; ".join(f"{key}: {python}" for key, python in pythons.items())
            + ". Run them one at a time (MODEL=<project>/<model>)"
        )
    return models, skipped
