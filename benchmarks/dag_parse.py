"""Parse time of each DAG file against an empty DAG file, per Airflow version, in one run.

    python benchmarks/dag_parse.py                      # 3.3.1 and 2.11.2, 5 parses per file
    python benchmarks/dag_parse.py --versions 3.3.1 --repeat 3

Each parse runs in a fresh interpreter of .venvs/airflow-<version> (scripts/airflow_venv.sh)
that has already imported Airflow, its DagBag, the DAG decorator and the ``airflow.*`` modules the
file imports (the DAG processor pre-imports those once before forking a parser), like a DAG
processor about to parse a file; only ``DagBag(<file>)`` is timed. The empty DAG file uses the
same decorator, so "over empty" is what the platform's own code (mlops_dags, mlops_core, Params) adds per parse.
Prints a Markdown table (median and min over the repeats, milliseconds).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "dag_assets" / "dags"
EMPTY_DAG = '''"""Airflow DAG: the empty baseline of the parse benchmark."""
from datetime import datetime

try:
    from airflow.sdk import dag
except ImportError:
    from airflow.decorators import dag


@dag(dag_id="empty_baseline", schedule=None, start_date=datetime(2026, 1, 1))
def empty_baseline():
    pass


empty_baseline()
'''

# A second baseline with one @task: separates what Airflow's TaskFlow machinery costs (imported
# on first use of @task) from what the platform's own DAG code adds.
TASK_DAG = '''"""Airflow DAG: a one-task baseline of the parse benchmark."""
from datetime import datetime

try:
    from airflow.sdk import dag, task
except ImportError:
    from airflow.decorators import dag, task


@dag(dag_id="task_baseline", schedule=None, start_date=datetime(2026, 1, 1))
def task_baseline():
    @task
    def noop():
        pass

    noop()


task_baseline()
'''

WORKER = r"""
import json, sys, time
folder, repo, path = sys.argv[1:4]
sys.path[:0] = [folder, repo]
import airflow  # noqa: F401 - warm: what a DAG processor has loaded before parsing a file
try:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import dag  # noqa: F401
    kwargs = {}
except ImportError:
    from airflow.models.dagbag import DagBag
    from airflow.decorators import dag  # noqa: F401
    kwargs = {"include_examples": False}
import importlib, logging
from airflow.utils.file import iter_airflow_imports
# As the DAG processor does (parsing_pre_import_modules, on by default): the airflow modules the
# file imports are imported once, before the parser process is forked, so a parse does not pay them.
for module in iter_airflow_imports(path):
    importlib.import_module(module)
logging.disable(logging.WARNING)
started = time.perf_counter()
bag = DagBag(path, **kwargs)
elapsed = time.perf_counter() - started
errors = {str(k): str(v) for k, v in bag.import_errors.items()}
print(json.dumps({"seconds": elapsed, "dags": sorted(bag.dags), "errors": errors}))
"""


def parse_once(python: Path, folder: Path, file: Path, env: dict) -> float:
    command = [str(python), "-c", WORKER, str(folder), str(REPO), str(file)]
    out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"parsing {file.name} failed:\n{out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["errors"] or not result["dags"]:
        raise RuntimeError(f"{file.name}: no DAG parsed ({result['errors']})")
    return result["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--versions", nargs="+", default=["3.3.1", "2.11.2"])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="dag-parse-bench-") as tmp:
        folder = Path(tmp) / "dags"
        shutil.copytree(DAGS, folder, ignore=shutil.ignore_patterns("__pycache__", "pipelines"))
        (folder / "empty_baseline.py").write_text(EMPTY_DAG)
        (folder / "task_baseline.py").write_text(TASK_DAG)
        baselines = [folder / "empty_baseline.py", folder / "task_baseline.py"]
        files = [*baselines, *sorted(folder.glob("mlops_*.py"))]
        rows = []
        for version in args.versions:
            python = REPO / ".venvs" / f"airflow-{version}" / "bin" / "python"
            if not python.exists():
                sys.exit(f"{python} missing: run scripts/airflow_venv.sh {version}")
            env = {
                **os.environ,
                "AIRFLOW_HOME": str(Path(tmp) / f"home-{version}"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_FOLDER": str(folder),
                "PYTHONDONTWRITEBYTECODE": "1",
            }
            # Interleave the files in each round so machine load affects them alike.
            samples: dict[str, list[float]] = {f.name: [] for f in files}
            for _ in range(args.repeat):
                for file in files:
                    samples[file.name].append(parse_once(python, folder, file, env))
            empty = statistics.median(samples["empty_baseline.py"])
            one_task = statistics.median(samples["task_baseline.py"])
            for file in files:
                median = statistics.median(samples[file.name])
                low = min(samples[file.name])
                rows.append((version, file.name, median, low, median - empty, median - one_task))
    print(f"DAG file parse time, fresh process per parse, {args.repeat} parses per file ({os.cpu_count()} CPUs)\n")
    print("| Airflow | DAG file | median ms | min ms | over empty DAG, ms | over one-@task DAG, ms |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for version, name, median, low, over_empty, over_task in rows:
        print(
            f"| {version} | {name} | {median * 1000:.1f} | {low * 1000:.1f} | {over_empty * 1000:+.1f} "
            f"| {over_task * 1000:+.1f} |"
        )


if __name__ == "__main__":
    main()
