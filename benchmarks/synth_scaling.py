"""Synthesis wall time and peak memory for 1, 10, 100 and 1,000 models, against an empty CDK app
measured in the same run, plus the largest resource count of any stack.

Each case runs in a fresh process (Python + the jsii Node runtime); peak memory is the peak of the
sum of their resident sets, sampled from /proc every 20 ms. Models are spread over projects of at
most 20 (1,000 models = 50 projects), one environment (dev), cdk-nag and the CDK's built-in
validation on, as ``cdk synth`` runs for a user.

    .venv/bin/python benchmarks/synth_scaling.py [--models 1 10 100 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS_PER_PROJECT = 20

EMPTY_APP = """
import aws_cdk as cdk
cdk.App(outdir={outdir!r}).synth()
"""

PLATFORM_APP = """
import sys
sys.path.insert(0, {root!r})
import aws_cdk as cdk
from app import build_app
from stacks.cdk_context import cdk_json_context
app = build_app(cdk.App(outdir={outdir!r}, context=cdk_json_context(environments="dev", projects_dir={projects!r})))
app.synth()
"""

PROJECT_FILE = """
from mlops_constructs import ModelPipeline
PROJECT = "project-{p:02d}"

def define(stack):
    for m in range({count}):
        ModelPipeline(stack, f"Model{{m}}", platform=stack.platform, project=stack.project, model=f"model-{{m:02d}}",
                      gate={{"metric": "f1", "threshold": 0.8}},
                      endpoint={{"autoscaling": {{"min_capacity": 1, "max_capacity": 4}}}})
"""


def _tree_rss_kib(pid: int) -> int:
    """Resident memory of a process and all its descendants."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ppid, pages = int(fields[1]), int(fields[21])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
        rss[int(entry)] = pages * os.sysconf("SC_PAGE_SIZE") // 1024
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        total += rss.get(current, 0)
        stack.extend(children.get(current, []))
    return total


def run_case(code: str) -> tuple[float, float]:
    """(wall seconds, peak MiB) of one synthesis in a fresh interpreter."""
    # Node 24 from package.json, as `make` uses it.
    env = {**os.environ, "PATH": f"{ROOT / 'node_modules' / '.bin'}{os.pathsep}{os.environ['PATH']}"}
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss_kib(process.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = process.communicate()
    elapsed = time.perf_counter() - start
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"synthesis failed:\n{stderr.decode()[-3000:]}")
    return elapsed, peak / 1024


def write_projects(directory: Path, models: int) -> int:
    projects = max(1, -(-models // MODELS_PER_PROJECT))
    for p in range(projects):
        count = min(MODELS_PER_PROJECT, models - p * MODELS_PER_PROJECT)
        (directory / f"project_{p:02d}.py").write_text(PROJECT_FILE.format(p=p, count=count))
    return projects


def largest_stack(outdir: Path) -> tuple[str, int, int]:
    """(stack, resources, template bytes) of the stack with the most resources."""
    best = ("", 0, 0)
    for template in outdir.rglob("*.template.json"):
        body = template.read_text()
        count = len(json.loads(body)["Resources"])
        if count > best[1]:
            best = (template.name.removesuffix(".template.json"), count, len(body))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, nargs="+", default=[1, 10, 100, 1000])
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch)
        wall, peak = run_case(EMPTY_APP.format(outdir=str(base / "empty")))
        rows.append(("empty CDK app", "-", "-", wall, peak, "-", "-"))
        for models in args.models:
            projects_dir = base / f"projects-{models}"
            projects_dir.mkdir()
            projects = write_projects(projects_dir, models)
            outdir = base / f"out-{models}"
            wall, peak = run_case(PLATFORM_APP.format(root=str(ROOT), outdir=str(outdir), projects=str(projects_dir)))
            stack, resources, size = largest_stack(outdir)
            rows.append(
                (
                    f"{models} models",
                    projects,
                    projects + 1,
                    wall,
                    peak,
                    f"{resources} ({stack})",
                    f"{size / 1024:.0f} KiB",
                )
            )
            print(f"  measured {models} models: {wall:.1f} s", file=sys.stderr)

    print("| case | projects | stacks | synth wall (s) | peak RSS (MiB) | max resources in a stack | its template |")
    print("|---|---|---|---|---|---|---|")
    for name, projects, stacks, wall, peak, resources, size in rows:
        print(f"| {name} | {projects} | {stacks} | {wall:.1f} | {peak:.0f} | {resources} | {size} |")


if __name__ == "__main__":
    main()
