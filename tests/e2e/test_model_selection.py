"""Which models local mode runs and which repository stands in for each one's image: every model by
default, one with MODEL, a team's own repository with MODEL_REPO (the model named by its
.gitlab-ci.yml), and a clear message for every mix-up. No AWS, Airflow or synth: the resolved
pipeline configurations are plain dicts here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from local_mode.models import (
    TEMPLATE,
    ModelSelectionError,
    model_of_repository,
    parse_model_repos,
    python_for,
    resolve,
)

from .regression_repo import make_regression_repo


def _config(project: str, model: str, problem_type: str = "classification") -> dict:
    return {"project": project, "model": model, "problem_type": problem_type, "data_bucket": "data"}


CONFIGS = [
    _config("endpoint-security", "process-classifier"),
    _config("capacity", "saturation-classifier"),
    _config("capacity", "latency-regressor", "regression"),
]


@pytest.fixture(scope="module")
def team_repo(tmp_path_factory) -> Path:
    return make_regression_repo(
        tmp_path_factory.mktemp("repos") / "latency", project="capacity", model="latency-regressor"
    )


def _keys(models) -> list[str]:
    return [m.key for m in models]


def test_every_model_the_template_can_stand_in_for_runs_by_default_and_the_others_say_how_to_run_them():
    models, skipped = resolve(CONFIGS, [], {})
    assert _keys(models) == ["capacity/saturation-classifier", "endpoint-security/process-classifier"]
    assert all(m.source.path == TEMPLATE for m in models)
    assert skipped == [
        "capacity/latency-regressor: a regression model, which the template (classification) cannot stand in "
        "for; run it with MODEL=capacity/latency-regressor MODEL_REPO=<its repository>"
    ]


def test_one_model_by_name():
    models, _ = resolve(CONFIGS, ["endpoint-security/process-classifier"], {})
    assert _keys(models) == ["endpoint-security/process-classifier"]


def test_an_unknown_model_is_refused_listing_the_known_ones():
    with pytest.raises(ModelSelectionError) as failure:
        resolve(CONFIGS, ["capacity/latency"], {})
    assert str(failure.value) == (
        "no ModelPipeline capacity/latency in the local environment; it has: capacity/latency-regressor, "
        "capacity/saturation-classifier, endpoint-security/process-classifier (MODEL=<project>/<model>, or MODEL=all)"
    )


def test_a_regressor_named_without_its_repository_is_refused_saying_how():
    with pytest.raises(ModelSelectionError, match="pass its repository with MODEL_REPO=<path>"):
        resolve(CONFIGS, ["capacity/latency-regressor"], {})


def test_a_team_s_repository_runs_the_model_its_ci_file_names_with_its_code_and_data(team_repo):
    assert model_of_repository(team_repo) == "capacity/latency-regressor"
    [model], skipped = resolve(CONFIGS, [], parse_model_repos([str(team_repo)]))
    assert (model.key, model.source.path, model.source.problem_type) == (
        "capacity/latency-regressor",
        team_repo,
        "regression",
    )
    assert model.source.features == ("requests_per_second", "payload_kb", "cache_hit_ratio")
    assert model.source.python == sys.executable  # the template's requirements: this virtualenv has them
    assert skipped == []
    # What the endpoint gets: the test records' features in order, without the label.
    first = (team_repo / "data" / "test" / "test.csv").read_text().splitlines()[1].split(",")
    assert model.source.sample_records(1) == ",".join(first[:3]) + "\n"


def test_a_repository_whose_model_is_not_in_the_environment_says_what_to_do(team_repo, tmp_path):
    with pytest.raises(ModelSelectionError) as failure:
        resolve(CONFIGS[:2], [], parse_model_repos([str(team_repo)]))
    message = str(failure.value)
    assert "names the model capacity/latency-regressor, but no ModelPipeline in projects/ defines it" in message
    assert "PROJECT_FILE=<path>" in message


def test_a_repository_of_the_wrong_kind_is_refused(team_repo):
    with pytest.raises(
        ModelSelectionError,
        match="capacity/saturation-classifier is a classification model .* but .* is a regression model",
    ):
        resolve(CONFIGS, ["capacity/saturation-classifier"], parse_model_repos([str(team_repo)]))


def test_repositories_per_model_and_strays(team_repo):
    repos = parse_model_repos([f"capacity/latency-regressor={team_repo}"])
    assert repos == {"capacity/latency-regressor": team_repo}
    models, _ = resolve(CONFIGS, ["capacity/latency-regressor", "capacity/saturation-classifier"], repos)
    assert [m.source.path for m in models] == [team_repo, TEMPLATE]
    with pytest.raises(ModelSelectionError, match="MODEL_REPO names capacity/latency-regressor, which is not run"):
        resolve(CONFIGS, ["capacity/saturation-classifier"], repos)


def test_a_repository_without_sample_data_is_refused(team_repo, tmp_path):
    bare = tmp_path / "bare"
    make_regression_repo(bare, project="capacity", model="latency-regressor")
    for item in (bare / "data").rglob("*.csv"):
        item.unlink()
    with pytest.raises(ModelSelectionError, match="has no sample data: the pipeline trains on data/train"):
        resolve(CONFIGS, [], parse_model_repos([str(bare)]))


def test_requirements_decide_the_python(team_repo, tmp_path):
    assert python_for(TEMPLATE) == sys.executable
    assert python_for(team_repo) == sys.executable  # same pins, other comments: the same environment
    other = tmp_path / "other"
    other.mkdir()
    (other / "requirements.txt").write_text("# a team's own pins\n" + (TEMPLATE / "requirements.txt").read_text())
    assert python_for(other) == sys.executable


@pytest.mark.slow
def test_other_requirements_get_a_virtualenv_of_their_own(tmp_path):
    """A team whose model needs other packages: local mode installs its requirements.txt once into
    .venvs/model-<digest> (scripts/tool_venv.sh, uv) and runs its train/evaluate/serve with it."""
    repository = tmp_path / "repo"
    repository.mkdir()
    (repository / "requirements.txt").write_text("joblib==1.6.0\n")
    python = python_for(repository, say=lambda text: None)
    assert python != sys.executable and "/.venvs/model-" in python
    done = subprocess.run(
        [python, "-c", "import joblib, sys; print(joblib.__version__)"], capture_output=True, text=True
    )
    assert done.stdout.strip() == "1.6.0", done.stderr
    assert python_for(repository, say=lambda text: None) == python  # built once
