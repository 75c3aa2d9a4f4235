"""`pip install` of the repository gives a team the constructs and the conventions they import."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BUILD = """
import sys
from setuptools import build_meta
print(build_meta.build_wheel(sys.argv[1]))
"""


def test_wheel_ships_constructs_conventions_and_cli(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", BUILD, str(tmp_path)], cwd=ROOT, capture_output=True, text=True, check=True
    )
    wheel = tmp_path / result.stdout.strip().splitlines()[-1]
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
