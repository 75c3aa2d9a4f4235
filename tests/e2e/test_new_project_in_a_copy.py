"""A model team's path, end to end, in a temporary copy of this repository: a new project file with a
classifier and a regressor is all the merge request adds. Then, as the platform's CI and the team
run them:

1. ``make synth`` synthesizes every environment with the new project (cdk-nag included);
2. the platform's tests pass unchanged: no snapshot or test knows which projects exist;
3. ``make demo MODEL_REPO=<the team's repository>`` runs the regressor, from the team's own
   repository outside the platform (its code, its sample data, its configuration), through the
   whole local pipeline: train, gate, register, deploy, retrain, update.

Needs the tool virtualenvs (make tools): checkov and Airflow 3.3.1. Takes ~5 minutes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from local_mode.airflow import DEFAULT_VENV

from .regression_repo import make_regression_repo

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.skipif(not (DEFAULT_VENV / "bin" / "airflow").exists(), reason="run scripts/airflow_venv.sh 3.3.1"),
    pytest.mark.skipif(not (ROOT / ".venvs" / "checkov").exists(), reason="run make tools (checkov)"),
]

PROJECT_FILE = '''"""The capacity team's models."""

from mlops_constructs import ModelPipeline, QualityGate, TrainingSettings
from stacks.project_stack import ProjectStack

PROJECT = "capacity"
ENVIRONMENTS = ("dev", "prod")


def define(stack: ProjectStack) -> None:
    ModelPipeline(
        stack,
        "SaturationClassifier",
        platform=stack.platform,
        project=stack.project,
        model="saturation-classifier",
        gate={"metric": "f1", "threshold": 0.8},
    )
    ModelPipeline(
        stack,
        "LatencyRegressor",
        platform=stack.platform,
        project=stack.project,
        model="latency-regressor",
        problem_type="regression",
        training=TrainingSettings(hyperparameters={"alpha": 0.5}),
        gate=QualityGate(metric="mse", threshold=1.0, max_regression=0.1),
    )
'''


def _copy_of_this_repository(target: Path) -> Path:
    """The repository's files as a checkout has them (tracked and new, not ignored), sharing the
    installed tools (.venv, .venvs, node_modules) instead of installing them again."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    for tool in (".venv", ".venvs", "node_modules"):
        (target / tool).symlink_to(ROOT / tool)
    return target


def _run(command: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "PYTEST", "CDK_"))}
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def test_a_new_project_with_a_classifier_and_a_regressor_needs_no_platform_change(tmp_path):
    platform = _copy_of_this_repository(tmp_path / "mlops-platform")
    (platform / "projects" / "capacity.py").write_text(PROJECT_FILE)
    team_repo = make_regression_repo(tmp_path / "latency-regressor", project="capacity", model="latency-regressor")

    synth = _run(["make", "synth"], platform, timeout=900)
    assert synth.returncode == 0, synth.stdout[-3000:] + synth.stderr[-3000:]
    for stack in ("mlops-dev-capacity", "mlops-prod-capacity", "mlops-dev-platform"):
        assert stack in synth.stdout
    assert "mlops-stage-capacity" not in synth.stdout  # ENVIRONMENTS = ("dev", "prod")

    tests = _run(
        [".venv/bin/python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/stacks", "tests/test_app.py"],
        platform,
        timeout=1200,
    )
    assert tests.returncode == 0, tests.stdout[-5000:] + tests.stderr[-2000:]
    assert " failed" not in tests.stdout and "snapshots passed" in tests.stdout

    demo = _run(["make", "demo", f"MODEL_REPO={team_repo}"], platform, timeout=1200)
    assert demo.returncode == 0, demo.stdout[-6000:] + demo.stderr[-2000:]
    state_dir = Path(re.search(r"state and summary\.json: (\S+)", demo.stdout)[1])
    summary = json.loads((state_dir / "summary.json").read_text())
    result = summary["result"]
    assert summary["ok"] is True
    assert result["capacity/latency-regressor: model versions"] == "0.1.0+r0 -> 0.1.0+r1"
    metrics = dict(item.split(" ") for item in result["capacity/latency-regressor: metrics (first)"].split(", "))
    assert set(metrics) == {"mse", "rmse", "mae", "r2"} and float(metrics["mse"]) <= 1.0  # its gate: mse at most 1.0
    assert result["capacity/latency-regressor: serving"].startswith("0.1.0+r1")
    # Only the regressor ran: the repository's .gitlab-ci.yml names it.
    assert not any(key.startswith(("capacity/saturation-classifier", "endpoint-security")) for key in result)
