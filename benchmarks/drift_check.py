"""Time of the drift check (the model template's ``monitor`` entry point, a Model Monitor
bring-your-own container) on N captured records: the whole process, as a processing job runs it
(Python start-up, imports, reading and parsing the captures, statistics, comparison, reports).

The captures are the example model's events in SageMaker's capture format and key layout, half CSV
and half JSON requests of one record each (the worst case: one parse per record), 1000 per file,
drifted in two features; the baseline is the sample training data's. Issue 14's goal: under 30 s
for 100k records on 2 cores.

    .venv/bin/python benchmarks/drift_check.py                      # 10k and 100k records
    .venv/bin/python benchmarks/drift_check.py --records 100000 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "model_template"
sys.path[:0] = [str(TEMPLATE / "src"), str(TEMPLATE / "tests")]

from template_testing import (  # noqa: E402
    entry_point_env,
    monitor_environment,
    traffic,
    write_baseline,
    write_captures,
)

START = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)


def prepare(folder: Path, records: int) -> dict[str, str]:
    write_baseline(folder)
    files = write_captures(
        folder / "endpointdata", traffic(records, seed=3, shifted=True), START, styles=("csv", "json")
    )
    print(f"{records} captured records in {files} files", flush=True)
    return monitor_environment(folder, folder, START, START + timedelta(seconds=records), publish=True)


def measure(records: int, repeat: int) -> list[float]:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        env = entry_point_env(folder / "opt_ml", **prepare(folder, records))
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "mlops_runtime", "monitor"], env=env, capture_output=True, text=True
            )
            times.append(time.perf_counter() - started)
            if done.returncode != 0:
                raise SystemExit(f"monitor failed: {done.stderr or done.stdout}")
            print("  " + done.stdout.strip(), flush=True)
        return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--records", type=int, action="append", help="captured records (repeatable; default 10k and 100k)"
    )
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"cores available: {len(os.sched_getaffinity(0))}")
    results = [(n, measure(n, args.repeat)) for n in args.records or [10_000, 100_000]]
    print(f"\n{'records':>8} {'best s':>8} {'median s':>9} {'runs':>5}")
    for n, times in results:
        ordered = sorted(times)
        print(f"{n:>8} {ordered[0]:8.2f} {ordered[len(ordered) // 2]:9.2f} {len(times):>5}")


if __name__ == "__main__":
    main()
