"""`pip install` of the repository gives a team the constructs and the conventions they import."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

BUILD = """
import sys
from setuptools import build_meta
print(build_meta.build_wheel(sys.argv[1]))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The repository built as a wheel once for this module's tests."""
    out = tmp_path_factory.mktemp("wheel")
    build = [sys.executable, "-c", BUILD, str(out)]
    result = subprocess.run(build, cwd=ROOT, capture_output=True, text=True, check=True)
    return out / result.stdout.strip().splitlines()[-1]


def test_wheel_ships_constructs_conventions_and_cli(wheel):
    with zipfile.ZipFile(wheel) as archive:
        files = set(archive.namelist())
        metadata = next(archive.read(n).decode() for n in files if n.endswith("METADATA"))
        entry_points = next(archive.read(n).decode() for n in files if n.endswith("entry_points.txt"))
    for module in (
        "mlops_constructs/__init__.py",
        "mlops_constructs/model_pipeline.py",
        "mlops_constructs/platform_ref.py",
        "mlops_constructs/py.typed",
        "mlops_core/names.py",
        "mlops_core/pipeline_config.py",
    ):
        assert module in files, module
    assert not any(name.startswith(("tests/", "stacks/", "constructs/")) for name in files)
    assert "Requires-Dist: aws-cdk-lib" in metadata
    assert "mlops = mlops_cli.main:main" in entry_points


USE_FROM_ANOTHER_APP = """
import json, sys
from pathlib import Path
import aws_cdk as cdk
import mlops_constructs
from mlops_constructs import ModelPipeline, PlatformRef
from mlops_core.platform_names import PlatformNames

assert mlops_constructs.__file__.startswith(sys.argv[1]), mlops_constructs.__file__  # the wheel, not the repo
app = cdk.App(outdir=sys.argv[2])
stack = cdk.Stack(app, "TeamStack", env=cdk.Environment(account="111111111111", region="eu-west-1"))
platform = PlatformRef.of(stack, names=PlatformNames(environment="dev", account="111111111111", region="eu-west-1"))
ModelPipeline(stack, "Scorer", platform=platform, project="fraud", model="scorer",
              gate={"metric": "f1", "threshold": 0.8})
template = json.loads((Path(app.synth().directory) / "TeamStack.template.json").read_text())
print(sorted({r["Type"] for r in template["Resources"].values()}))
"""


def test_a_team_uses_the_installed_wheel_from_its_own_cdk_app(wheel, tmp_path):
    """Installed elsewhere, without this repository: ModelPipeline against an existing platform."""
    target = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(target)  # what pip install --no-deps puts on sys.path
    team_app = tmp_path / "team-app"
    team_app.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", USE_FROM_ANOTHER_APP, str(target), str(tmp_path / "out")],
        cwd=team_app,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(target), "CDK_VALIDATION": "false", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    types = result.stdout.strip().splitlines()[-1]
    expected = ("AWS::ECR::Repository", "AWS::IAM::Role", "AWS::CloudWatch::Dashboard", "Custom::AWS")
    for resource in expected:
        assert resource in types, types
