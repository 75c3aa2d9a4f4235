"""Metric computation shared by train (logged) and evaluate (evaluation.json)."""

from __future__ import annotations

import numpy as np

import team_model
from mlops_runtime.contract import CLASSIFICATION_METRICS, REGRESSION_METRICS


def predicted_targets(model, X: np.ndarray) -> np.ndarray:
    """Targets predicted by the team's ``predict`` (class indices, or values for a regressor)."""
    results = team_model.predict(model, X)
    if team_model.PROBLEM_TYPE == "classification":
        return np.asarray([team_model.CLASSES.index(r["label"]) for r in results], dtype=int)
    return np.asarray([r["value"] for r in results], dtype=float)


def compute(problem_type: str, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    from sklearn import metrics as skm  # slow to import; only needed once the model exists

    if problem_type == "classification":
        binary = len(team_model.CLASSES) == 2
        options = (
            {"average": "binary", "pos_label": team_model.CLASSES.index(team_model.POSITIVE_CLASS)}
            if binary
            else {"average": "macro"}
        )
        values = {
            "f1": skm.f1_score(y_true, y_pred, zero_division=0, **options),
            "precision": skm.precision_score(y_true, y_pred, zero_division=0, **options),
            "recall": skm.recall_score(y_true, y_pred, zero_division=0, **options),
            "accuracy": skm.accuracy_score(y_true, y_pred),
        }
        names = CLASSIFICATION_METRICS
    else:
        values = {
            "mse": skm.mean_squared_error(y_true, y_pred),
            "mae": skm.mean_absolute_error(y_true, y_pred),
            "r2": skm.r2_score(y_true, y_pred),
        }
        names = REGRESSION_METRICS
    return {name: round(float(values[name]), 6) for name in names}


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    from sklearn import metrics as skm

    labels = list(team_model.CLASSES)
    matrix = skm.confusion_matrix(y_true, y_pred, labels=list(range(len(labels))))
    return {"labels": labels, "matrix": matrix.tolist(), "rows": "true", "columns": "predicted"}
