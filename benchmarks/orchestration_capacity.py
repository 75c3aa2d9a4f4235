"""How many trainings of different models a small Airflow keeps in flight at once, and how long each
holds a worker slot: N Training & Evaluation runs triggered together on a real local Airflow 3
(LocalExecutor with `parallelism` worker slots, scheduler, triggerer) against the local AWS, whose
training and evaluation jobs each take `--job-seconds`. The same runs against another version of
the DAG bundle (by default the one before issue 11, whose tasks polled SageMaker in-task) give the
comparison.

    .venv/bin/python benchmarks/orchestration_capacity.py                    # N=50, 60 s jobs, both designs
    .venv/bin/python benchmarks/orchestration_capacity.py --models 8 --designs current --json out.json

Measured per design: the peak number of training jobs in flight; the time from the first trigger
until every model's training job had started; worker-slot seconds per run (task instances in state
``running``, sampled every second through the REST API, integrated, divided by N) and that as a
share of a run's wall time; the mean run wall time and the wall time of the whole batch. Needs
.venvs/airflow-3.3.1 (scripts/airflow_venv.sh 3.3.1). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform as host
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "dags")]

from live_airflow import LiveAirflow, peak_in_flight  # noqa: E402

from mlops_core import names  # noqa: E402

# The DAG bundle before issue 11: SageMaker waits inside the task, max_active_runs 8 / 1.
PRESENT_REF = "fc806e0"


def bundle(design: str, ref: str, scratch: Path) -> Path:
    if design == "current":
        return REPO / "dag_assets" / "dags"
    target = scratch / f"dags-{ref}"
    target.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", ref, "dag_assets/dags"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target / "dag_assets" / "dags"


def _seconds(iso: str | None) -> float | None:
    return datetime.fromisoformat(iso).timestamp() if iso else None


def measure(design: str, args, scratch: Path) -> dict:
    scenario = {
        "training": {"delay_seconds": args.job_seconds, "rules": []},
        "processing": {"delay_seconds": args.job_seconds, "rules": []},
    }
    settings = {"MLOPS_CHECK_INTERVAL_SECONDS": str(args.check_interval), "MLOPS_LEASE_POLL_SECONDS": "10"}
    state = scratch / design
    with LiveAirflow(
        state_dir=state,
        scenario=scenario,
        dag_settings=settings,
        parallelism=args.parallelism,
        source_dags=bundle(design, args.present_ref, scratch),
    ) as live:
        models = [f"fleet-{i:04d}" for i in range(args.models)]
        for model in models:
            live.add_model(model)
        started = time.time()
        run_ids = [live.train(model) for model in models]
        print(f"{design}: {len(run_ids)} runs triggered in {time.time() - started:.1f} s", file=sys.stderr)
        runs = live.wait(names.DAG_TRAINING, run_ids, timeout=args.timeout)
        jobs = live.job_intervals("TrainingJob")
        evaluations = live.job_intervals("ProcessingJob")
        samples = live.samples
    slot_seconds = sum(a.running * (b.at - a.at) for a, b in zip(samples, samples[1:], strict=False))
    walls = [_seconds(r["end_date"]) - _seconds(r["start_date"]) for r in runs.values() if r.get("start_date")]
    job_starts = sorted(start for start, _ in jobs.values())
    last_end = max(_seconds(r["end_date"]) for r in runs.values())
    succeeded = sum(r["state"] == "success" for r in runs.values())
    per_run_slot = slot_seconds / len(run_ids)
    return {
        "design": design,
        "runs": len(run_ids),
        "succeeded": succeeded,
        "peak_training_jobs_in_flight": peak_in_flight(jobs.values()),
        "peak_jobs_in_flight": peak_in_flight([*jobs.values(), *evaluations.values()]),
        "all_trainings_in_flight_after_seconds": job_starts[-1] - started if len(job_starts) == len(run_ids) else None,
        "peak_running_task_instances": max(s.running for s in samples),
        "peak_deferred_task_instances": max(s.deferred for s in samples),
        "slot_seconds_per_run": per_run_slot,
        "mean_run_wall_seconds": statistics.mean(walls),
        "slot_share_of_run_wall": per_run_slot / statistics.mean(walls),
        "batch_wall_seconds": last_end - started,
    }


def _optional_seconds(value: float | None) -> str:
    return "not all" if value is None else f"{value:.0f} s"


def table(results: list[dict], args) -> str:
    rows = [
        ("runs succeeded", lambda r: f"{r['succeeded']}/{r['runs']}"),
        ("peak training jobs in flight", lambda r: str(r["peak_training_jobs_in_flight"])),
        ("peak SageMaker jobs in flight (training + evaluation)", lambda r: str(r["peak_jobs_in_flight"])),
        (
            "every model's training job started after",
            lambda r: _optional_seconds(r["all_trainings_in_flight_after_seconds"]),
        ),
        (
            "peak task instances running / deferred",
            lambda r: f"{r['peak_running_task_instances']} / {r['peak_deferred_task_instances']}",
        ),
        ("worker-slot seconds per run", lambda r: f"{r['slot_seconds_per_run']:.1f} s"),
        ("mean run wall time", lambda r: f"{r['mean_run_wall_seconds']:.0f} s"),
        ("slot time / run wall time", lambda r: f"{100 * r['slot_share_of_run_wall']:.1f} %"),
        ("wall time of the batch", lambda r: f"{r['batch_wall_seconds']:.0f} s"),
    ]
    designs = " | ".join(r["design"] for r in results)
    header = f"| N={args.models} runs, {args.job_seconds:.0f} s jobs, parallelism {args.parallelism} | {designs} |"
    lines = [header, "|---" * (len(results) + 1) + "|"]
    lines += [f"| {label} | " + " | ".join(cell(r) for r in results) + " |" for label, cell in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--job-seconds", type=float, default=60)
    parser.add_argument("--parallelism", type=int, default=4)
    parser.add_argument("--check-interval", type=int, default=5, help="seconds between SageMaker polls")
    parser.add_argument("--designs", default="current,present", help="current, present (the bundle at --present-ref)")
    parser.add_argument("--present-ref", default=PRESENT_REF)
    parser.add_argument("--timeout", type=float, default=3600, help="per design")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="orchestration-capacity-") as scratch:
        for design in args.designs.split(","):
            results.append(measure(design, args, Path(scratch)))
            print(json.dumps(results[-1], indent=2), file=sys.stderr)
    print(table(results, args))
    print(f"\n{host.node()}, {os.cpu_count()} CPUs, measured {datetime.now():%Y-%m-%d %H:%M}")
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "results": results}, indent=2))


if __name__ == "__main__":
    main()
