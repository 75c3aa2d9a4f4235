"""``train``: the SageMaker training job entry point.

Reads ``input/config/hyperparameters.json`` and the ``train`` channel (plus ``validation`` if given,
otherwise a stratified hold-out of ``train``), writes the model and ``metadata.json`` to ``model/``,
prints one ``metric <split>:<name>=<value>`` line per metric, and on any error writes the reason to
``output/failure`` and exits 1.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from datetime import UTC, datetime

import numpy as np

import team_model
from mlops_runtime import contract, dataset, failure, hyperparameters, metrics
from mlops_runtime.paths import MLPaths

METADATA_FILE = "metadata.json"


def _version(distribution: str) -> str:
    from importlib.metadata import version

    return version(distribution)


def _refuse_several_hosts(paths: MLPaths) -> None:
    """The example model trains on one machine. On a job with several instances each would train
    the same model on the same data (SageMaker copies every channel to every host) and the extra
    instances are paid for nothing, so such a job fails at once. A team that makes its model
    distributed removes this check and reads the hosts from the same file."""
    if not paths.resource_config.is_file():
        return
    hosts = json.loads(paths.resource_config.read_text()).get("hosts") or []
    if len(hosts) > 1:
        raise failure.ResourceConfigError(
            f"this training job has {len(hosts)} instances ({', '.join(hosts)}) but the model trains on "
            "one: every instance would train the same model. Set the training instance_count to 1 "
            "(a larger instance_type gives it more CPU and memory)."
        )


def run(paths: MLPaths) -> dict:
    _refuse_several_hosts(paths)
    params = hyperparameters.resolve(
        hyperparameters.read_file(paths.hyperparameters), team_model.HYPERPARAMETERS
    )
    print(f"hyperparameters: {json.dumps(params, sort_keys=True)}", flush=True)
    if params["fail_training"]:
        raise failure.DeliberateFailure(
            "fail_training=true was set: this training job fails on purpose (failure-path demo)"
        )
    train_dir = paths.channel("train")
    if not train_dir.is_dir():
        raise FileNotFoundError(f"no train channel: {train_dir} does not exist")
    X, y = dataset.read_channel(train_dir)
    validation_dir = paths.channel("validation")
    if validation_dir.is_dir():
        X_train, y_train = X, y
        X_val, y_val = dataset.read_channel(validation_dir)
    else:
        from sklearn.model_selection import train_test_split  # slow import: after the input checks

        stratify = y if team_model.PROBLEM_TYPE == "classification" else None
        X_train, X_val, y_train, y_val = train_test_split(
            X, y, test_size=params["validation_fraction"], random_state=params["seed"], stratify=stratify
        )
    print(f"training on {len(X_train)} rows, validating on {len(X_val)} rows", flush=True)

    started = time.perf_counter()
    model = team_model.fit(X_train, y_train, params)
    fit_seconds = time.perf_counter() - started

    scores = {}
    for split, (Xs, ys) in {"train": (X_train, y_train), "validation": (X_val, y_val)}.items():
        scores[split] = metrics.compute(team_model.PROBLEM_TYPE, ys, *metrics.predictions(model, Xs))
        for name, value in scores[split].items():
            print(contract.metric_line(split, name, value), flush=True)

    paths.model.mkdir(parents=True, exist_ok=True)
    team_model.save(model, paths.model)
    metadata = {
        "problem_type": team_model.PROBLEM_TYPE,
        "features": list(team_model.FEATURES),
        "classes": list(team_model.CLASSES) if team_model.PROBLEM_TYPE == "classification" else None,
        "hyperparameters": params,
        "metrics": scores,
        "rows": {"train": len(X_train), "validation": len(X_val)},
        "fit_seconds": round(fit_seconds, 3),
        "trained_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scikit-learn": _version("scikit-learn"),
        },
    }
    (paths.model / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
    print(f"model written to {paths.model} in {fit_seconds:.2f} s", flush=True)
    return metadata


def main() -> None:
    paths = MLPaths.from_env()
    failure.stop_on_sigterm()
    try:
        run(paths)
    except (Exception, failure.Stopped) as exc:  # noqa: BLE001  # pylint: disable=broad-exception-caught  # a readable FailureReason
        sys.exit(failure.report(exc, paths.failure, "training"))


if __name__ == "__main__":
    main()
