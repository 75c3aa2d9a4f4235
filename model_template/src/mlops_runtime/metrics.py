"""Metric computation shared by train (logged) and evaluate (evaluation.json, model_quality.json)."""

from __future__ import annotations

import numpy as np

import team_model
from mlops_runtime.contract import CLASSIFICATION_METRICS, REGRESSION_METRICS


def predictions(model, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """What the team's ``predict`` returns for ``X`` as arrays: the targets (class indices, or values
    for a regressor) and, for a classifier, the class probabilities (rows x ``CLASSES``) when
    ``predict`` gives them, else None. A binary classifier gives them as ``"probability"`` (of
    ``POSITIVE_CLASS``), any classifier as ``"probabilities"`` (class name -> probability)."""
    results = team_model.predict(model, X)
    if team_model.PROBLEM_TYPE != "classification":
        return np.asarray([r["value"] for r in results], dtype=float), None
    classes = list(team_model.CLASSES)
    targets = np.asarray([classes.index(r["label"]) for r in results], dtype=int)
    first = results[0] if results else {}
    if "probabilities" in first:
        return targets, np.asarray([[r["probabilities"][c] for c in classes] for r in results], dtype=float)
    if "probability" in first and len(classes) == 2:
        positive = classes.index(team_model.POSITIVE_CLASS)
        probabilities = np.empty((len(results), 2))
        probabilities[:, positive] = [r["probability"] for r in results]
        probabilities[:, 1 - positive] = 1 - probabilities[:, positive]
        return targets, probabilities
    return targets, None


def compute(
    problem_type: str, y_true: np.ndarray, y_pred: np.ndarray, probabilities: np.ndarray | None = None
) -> dict[str, float]:
    """The platform's metrics, in ``contract`` order. auc and log_loss are left out when there are
    no probabilities (or, for auc, when the labels hold a single class)."""
    from sklearn import metrics as skm  # slow to import; only needed once the model exists

    if problem_type != "classification":
        mse = skm.mean_squared_error(y_true, y_pred)
        values = {
            "mse": mse,
            "rmse": np.sqrt(mse),
            "mae": skm.mean_absolute_error(y_true, y_pred),
            "r2": skm.r2_score(y_true, y_pred),
        }
        return {name: round(float(values[name]), 6) for name in REGRESSION_METRICS}
    labels = list(range(len(team_model.CLASSES)))
    binary = len(labels) == 2
    positive = team_model.CLASSES.index(team_model.POSITIVE_CLASS) if binary else None
    options = {"average": "binary", "pos_label": positive} if binary else {"average": "macro"}
    values = {
        "f1": skm.f1_score(y_true, y_pred, zero_division=0, **options),
        "precision": skm.precision_score(y_true, y_pred, zero_division=0, **options),
        "recall": skm.recall_score(y_true, y_pred, zero_division=0, **options),
        "accuracy": skm.accuracy_score(y_true, y_pred),
    }
    if probabilities is not None:
        values["log_loss"] = skm.log_loss(y_true, probabilities, labels=labels)
        if len(np.unique(y_true)) > 1:
            values["auc"] = (
                skm.roc_auc_score(y_true == positive, probabilities[:, positive])
                if binary
                else skm.roc_auc_score(y_true, probabilities, multi_class="ovr", labels=labels)
            )
    return {name: round(float(values[name]), 6) for name in CLASSIFICATION_METRICS if name in values}


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    from sklearn import metrics as skm

    labels = list(team_model.CLASSES)
    matrix = skm.confusion_matrix(y_true, y_pred, labels=list(range(len(labels))))
    return {"labels": labels, "matrix": matrix.tolist(), "rows": "true", "columns": "predicted"}
