"""Wall time of the local pipeline, trigger to serving endpoint, per stage: first training and
retraining (each followed by its deployment), in one run of local mode; then the same with local
AWS's IAM enforcement off, to measure what authorizing every request costs.

    .venv/bin/python benchmarks/e2e_local.py [--json results.json] [--iam on,off] [--rounds 1]

"Trigger -> serving" starts with CI's ``mlops version next`` (first training; the trigger Lambda is
called right after it) or when the Retraining DAG is unpaused (retraining), and ends when
``invoke_endpoint`` returns the new version; it includes reading both notifications back, and for
retraining the fixture model's shadow trial (an 8 s bake while requests arrive). Per-task seconds
are Airflow's own task durations. Needs .venvs/airflow-3.3.1 (scripts/airflow_venv.sh 3.3.1).
"""

from __future__ import annotations

import argparse
import json
import os
import platform as host
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from local_mode import scenario  # noqa: E402
from local_mode.platform import LocalPlatform  # noqa: E402

# The stack tests' fixture project: the benchmark measures the same model whatever projects/ holds.
FIXTURE_PROJECTS = Path(__file__).resolve().parents[1] / "tests" / "stacks" / "fixture_projects"
FIXTURE_PROJECT = "example-team"


def _cycle(platform, model, journal, label: str, retraining: bool) -> dict:
    started = time.monotonic()
    if retraining:
        trained = scenario.retrain(platform, [model], journal, label=label)[model.key]
    else:
        trained = scenario.train(platform, model, journal, label=label)
    if trained.run.state != "success":
        raise SystemExit(f"{label}: training {trained.run.state}: {trained.run.tasks}")
    # The fixture's classifier deploys an update through a shadow trial, judged on requests sent meanwhile.
    deployed = scenario.deploy(
        platform, model, journal, label=label, model_version=trained.model_version, traffic=retraining
    )
    if deployed.run.state != "success" or deployed.answer["model"]["model_version"] != trained.model_version:
        raise SystemExit(f"{label}: deployment {deployed.run.state}: {deployed.run.tasks}")
    return {
        "label": label,
        "model_version": trained.model_version,
        "trigger_to_serving_seconds": time.monotonic() - started,
        "training_dag_seconds": trained.run.seconds,
        "deployment_dag_seconds": deployed.run.seconds,
        "invoke_ms": deployed.invoke_seconds * 1000,
        "training_tasks": {k: v["duration"] for k, v in trained.run.tasks.items()},
        "deployment_tasks": {k: v["duration"] for k, v in deployed.run.tasks.items()},
    }


def _run(model_key: str, enforce_iam: bool) -> dict:
    journal = scenario.Journal()
    platform = LocalPlatform(
        state_dir=Path(tempfile.mkdtemp(prefix="mlops-bench-")),
        say=lambda _: None,
        projects_dir=FIXTURE_PROJECTS,
        models=[model_key],
        enforce_iam=enforce_iam,
    )
    with platform:
        startup = dict(platform.timings)
        model = platform.model()
        cycles = [
            _cycle(platform, model, journal, "first training", False),
            _cycle(platform, model, journal, "retraining", True),
        ]
    return {"iam": enforce_iam, "startup": startup, "cycles": cycles, "authorization": platform.authorization or {}}


def _iam_table(runs: list[dict]) -> None:
    """Enforcement on against off, rounds interleaved (on, off, on, off ...) so drift hits both."""
    print(
        "\n| IAM enforcement | first training: trigger -> serving (s) | retraining (s) | requests authorized "
        "| distinct checks | denied | time authorizing (s) |\n|---|---:|---:|---:|---:|---:|---:|"
    )
    for run in runs:
        first, second = run["cycles"]
        auth = run["authorization"]
        print(
            f"| {'on' if run['iam'] else 'off'} | {first['trigger_to_serving_seconds']:.1f} "
            f"| {second['trigger_to_serving_seconds']:.1f} | {auth.get('requests_checked', '-')} "
            f"| {auth.get('distinct_checks', '-')} | {len(auth.get('denied', [])) if auth else '-'} "
            f"| {auth.get('authorization_seconds', '-')} |"
        )

    def mean(enforced: bool, index: int) -> float:
        values = [r["cycles"][index]["trigger_to_serving_seconds"] for r in runs if r["iam"] == enforced]
        return sum(values) / len(values) if values else float("nan")

    for index, label in ((0, "first training"), (1, "retraining")):
        on, off = mean(True, index), mean(False, index)
        print(f"{label}: enforcement adds {on - off:+.1f} s ({(on - off) / off * 100:+.1f} %) to trigger -> serving")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--iam", default="on,off", help="on, off or on,off (default: both, in that order)")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the on/off pair this many times")
    parser.add_argument("--model", default=f"{FIXTURE_PROJECT}/classifier", help="PROJECT/MODEL of the fixture project")
    args = parser.parse_args()
    modes = [mode.strip() == "on" for mode in args.iam.split(",")]
    runs = [_run(args.model, enforced) for _ in range(args.rounds) for enforced in modes]
    startup, cycles = runs[0]["startup"], runs[0]["cycles"]
    results = {"machine": f"{os.cpu_count()} cores, {host.platform()}", "runs": runs}
    print(f"machine: {results['machine']}")
    print(f"first run (IAM enforcement {'on' if runs[0]['iam'] else 'off'}):\n")
    print("| start-up step | seconds |\n|---|---:|")
    for name, seconds in startup.items():
        print(f"| {name} | {seconds:.1f} |")
    print("\n| stage | first training | retraining |\n|---|---:|---:|")
    first, second = cycles
    rows = [
        ("trigger -> serving endpoint (total)", "trigger_to_serving_seconds"),
        ("Training & Evaluation DAG run", "training_dag_seconds"),
        ("Deployment DAG run", "deployment_dag_seconds"),
    ]
    for label, key in rows:
        print(f"| {label} | {first[key]:.1f} | {second[key]:.1f} |")
    for group in ("training_tasks", "deployment_tasks"):
        for task in first[group]:
            a, b = first[group].get(task), second[group].get(task)
            print(f"| &nbsp;&nbsp;task {task} | {a or 0:.1f} | {b or 0:.1f} |")
    print(f"| invoke_endpoint after deployment (ms) | {first['invoke_ms']:.0f} | {second['invoke_ms']:.0f} |")
    print(f"\nversions: {first['model_version']} -> {second['model_version']}")
    if len(runs) > 1:
        _iam_table(runs)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
