"""Time of each GitLab pipeline in the emulator (gitlab-ci-local, shell executor) and how much of
each job is dependency installation: runs the pipeline tests (tests/ci/test_*_runs.py) and prints
a table from their records. Package caches (pip, uv, npm) are kept between runs like a runner's
cache (~/.cache/mlops-pipeline-tests); the first run on a machine fills them.

    .venv/bin/python benchmarks/ci_pipelines.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TESTS = ["tests/ci/test_mlops_pipeline_runs.py", "tests/ci/test_repository_pipelines_run.py"]


def main() -> int:
    with tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False) as handle:
        record = Path(handle.name)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *TESTS],
        cwd=REPO,
        env={**__import__("os").environ, "MLOPS_PIPELINE_TIMINGS": str(record)},
        check=False,
    )
    print(f"\n{'pipeline (jobs run)':58} {'job':34} {'job s':>7} {'install s':>10}")
    for line in record.read_text().splitlines():
        entry = json.loads(line)
        jobs = entry["jobs_run"] if isinstance(entry["jobs_run"], str) else ",".join(entry["jobs_run"])
        label = f"{entry['project']} ({jobs})"
        total_install = sum(j["install_seconds"] for j in entry["jobs"].values())
        print(f"{label[:58]:58} {'(whole run, wall)':34} {entry['seconds']:7.1f} {total_install:10.1f}")
        for job, times in sorted(entry["jobs"].items()):
            print(f"{'':58} {job[:34]:34} {times['seconds']:7.1f} {times['install_seconds']:10.1f}")
    record.unlink()
    return done.returncode


if __name__ == "__main__":
    raise SystemExit(main())
