"""``evaluate``: the SageMaker processing job entry point.

Inputs (under ``MLOPS_ML_ROOT``, default ``/opt/ml``):
- ``processing/model/``: the training job's ``model.tar.gz`` or its extracted files;
- ``processing/test/`` (or ``processing/input/``): CSV files with a header and the label column.
Outputs in ``processing/evaluation/``:
- ``evaluation.json``::

    {"schema_version": 1, "problem_type": "classification",
     "metrics": {"f1": 0.91, "precision": 0.93, "recall": 0.89, "accuracy": 0.96},
     "confusion_matrix": {"labels": ["benign", "malicious"], "matrix": [[TN, FP], [FN, TP]],
                          "rows": "true", "columns": "predicted"},
     "positive_class": "malicious", "samples": 600, "training": {...metadata.json of the model...}}

  A regressor has ``"metrics": {"mse", "rmse", "mae", "r2"}`` and ``"confusion_matrix": null``;
  a classifier whose predict gives probabilities also has ``auc`` and ``log_loss``.
- ``model_quality.json``: the same test-set metrics in SageMaker's model-quality format (see
  ``model_quality.py``), which the platform registers as the model package's ModelQuality statistics.
- ``confusion_matrix.png`` (classifiers only).
When the training data is an input too (``processing/train/``, CSV files as for training), its
baseline for drift monitoring goes to ``processing/baseline/``: ``statistics.json`` and
``constraints.json`` in SageMaker Model Monitor's formats (``baseline.py``), with the comparison
threshold from ``MLOPS_DRIFT_COMPARISON_THRESHOLD`` (default Model Monitor's 0.1).
On error the reason goes to ``output/message`` (the job's ExitMessage) and the exit code is 1.
"""

from __future__ import annotations

import json
import os
import sys
import tarfile
import tempfile
from pathlib import Path

import team_model
from mlops_runtime import baseline, contract, dataset, failure, metrics, model_quality
from mlops_runtime.paths import MLPaths
from mlops_runtime.train import METADATA_FILE


def _model_dir(source: Path, scratch: Path) -> Path:
    """``source`` itself, or the extracted ``model.tar.gz`` it holds."""
    archives = sorted(source.glob("*.tar.gz"))
    if not archives:
        return source
    with tarfile.open(archives[0]) as archive:
        archive.extractall(scratch, filter="data")  # "data" refuses absolute paths and links out
    return scratch


def _test_dir(paths: MLPaths) -> Path:
    for candidate in paths.processing_test_candidates:
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        "no test data: expected CSV files in " + " or ".join(map(str, paths.processing_test_candidates))
    )


def _plot_confusion_matrix(matrix: dict, path: Path) -> None:
    import matplotlib  # imported here: only evaluation needs it, serving stays lean

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from sklearn.metrics import ConfusionMatrixDisplay

    display = ConfusionMatrixDisplay(np.asarray(matrix["matrix"]), display_labels=matrix["labels"])
    figure, axes = plt.subplots(figsize=(4.5, 4), dpi=120)
    display.plot(ax=axes, cmap="Blues", colorbar=False, values_format="d")
    axes.set_title("Confusion matrix (test set)")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def write_baseline(paths: MLPaths) -> Path | None:
    """The training data's statistics and suggested constraints, or None without a train input."""
    if not paths.processing_train.is_dir():
        return None
    threshold = float(
        os.environ.get(contract.COMPARISON_THRESHOLD_ENV) or baseline.DEFAULT_COMPARISON_THRESHOLD
    )
    X, _ = dataset.read_channel(paths.processing_train)
    stats = baseline.statistics(team_model.FEATURES, X)
    out = paths.processing_baseline
    out.mkdir(parents=True, exist_ok=True)
    (out / contract.BASELINE_STATISTICS_FILE).write_text(json.dumps(stats, allow_nan=False) + "\n")
    constraints = baseline.constraints(stats, threshold)
    (out / contract.BASELINE_CONSTRAINTS_FILE).write_text(json.dumps(constraints, indent=2) + "\n")
    print(f"baseline of {len(X)} training records written to {out}", flush=True)
    return out


def run(paths: MLPaths) -> dict:
    if not paths.processing_model.is_dir():
        raise FileNotFoundError(f"no model input: {paths.processing_model} does not exist")
    test_dir = _test_dir(paths)
    with tempfile.TemporaryDirectory() as scratch:
        model_dir = _model_dir(paths.processing_model, Path(scratch))
        model = team_model.load(model_dir)
        metadata_path = model_dir / METADATA_FILE
        training = json.loads(metadata_path.read_text()) if metadata_path.is_file() else None
    X, y = dataset.read_channel(test_dir)
    y_pred, probabilities = metrics.predictions(model, X)
    classification = team_model.PROBLEM_TYPE == "classification"
    report = {
        "schema_version": contract.EVALUATION_SCHEMA_VERSION,
        "problem_type": team_model.PROBLEM_TYPE,
        "metrics": metrics.compute(team_model.PROBLEM_TYPE, y, y_pred, probabilities),
        "confusion_matrix": metrics.confusion_matrix(y, y_pred) if classification else None,
        "positive_class": team_model.POSITIVE_CLASS if classification else None,
        "samples": len(y),
        "training": training,
    }
    out = paths.processing_evaluation
    out.mkdir(parents=True, exist_ok=True)
    (out / contract.EVALUATION_FILE).write_text(json.dumps(report, indent=2) + "\n")
    quality = model_quality.report(y, y_pred, probabilities)
    (out / contract.MODEL_QUALITY_FILE).write_text(json.dumps(quality, indent=2, allow_nan=False) + "\n")
    if classification:
        _plot_confusion_matrix(report["confusion_matrix"], out / contract.CONFUSION_MATRIX_FILE)
    write_baseline(paths)
    for name, value in report["metrics"].items():
        print(contract.metric_line("test", name, value), flush=True)
    print(f"evaluation written to {out}", flush=True)
    return report


def main() -> None:
    paths = MLPaths.from_env()
    failure.stop_on_sigterm()
    try:
        run(paths)
    except (Exception, failure.Stopped) as exc:  # noqa: BLE001  # pylint: disable=broad-exception-caught  # a readable ExitMessage
        sys.exit(failure.report(exc, paths.processing_message, "evaluation"))


if __name__ == "__main__":
    main()
