"""Test-set metrics in SageMaker's model-quality format: what a Model Monitor model-quality job
writes, and what the Model Registry shows when the file is a model package's ModelQuality
statistics (https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-model-quality-metrics.html).

Every metric is ``{"value": v, "standard_deviation": s}``. As Model Monitor does, the deviation is
that of the metric over five random 80 % samples of the test set, and "NaN" below 200 rows. The
confusion matrix is nested dicts, true label -> predicted label -> count. A binary classifier's
"best constant classifier" always predicts the positive class (as in AWS's example).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

import team_model

MIN_ROWS_FOR_DEVIATION = 200
RESAMPLES = 5
RESAMPLE_FRACTION = 0.8
CURVE_POINTS = 101  # ROC and precision-recall curves are thinned to at most this many points


def report(y_true: np.ndarray, y_pred: np.ndarray, probabilities: np.ndarray | None) -> dict:
    if team_model.PROBLEM_TYPE != "classification":
        return {"regression_metrics": _with_deviation(_regression, y_true, y_pred, None)}
    classes = list(team_model.CLASSES)
    matrix = {
        actual: {predicted: int(np.sum((y_true == i) & (y_pred == j))) for j, predicted in enumerate(classes)}
        for i, actual in enumerate(classes)
    }
    if len(classes) != 2:
        metrics = _with_deviation(_multiclass, y_true, y_pred, probabilities)
        return {"multiclass_classification_metrics": {"confusion_matrix": matrix, **metrics}}
    positive = classes.index(team_model.POSITIVE_CLASS)
    metrics = _with_deviation(_binary, y_true == positive, y_pred == positive, probabilities)
    curves = {}
    if probabilities is not None and len(np.unique(y_true)) > 1:
        from sklearn.metrics import precision_recall_curve, roc_curve

        fpr, tpr, _ = roc_curve(y_true == positive, probabilities[:, positive])
        precisions, recalls, _ = precision_recall_curve(y_true == positive, probabilities[:, positive])
        curves = {
            "receiver_operating_characteristic_curve": {
                "false_positive_rates": _thin(fpr),
                "true_positive_rates": _thin(tpr),
            },
            "precision_recall_curve": {"precisions": _thin(precisions), "recalls": _thin(recalls)},
        }
    return {"binary_classification_metrics": {"confusion_matrix": matrix, **metrics, **curves}}


def _with_deviation(compute: Callable, y_true, y_pred, probabilities) -> dict:
    values = compute(y_true, y_pred, probabilities)
    rows = len(y_true)
    if rows < MIN_ROWS_FOR_DEVIATION:
        return {name: {"value": value, "standard_deviation": "NaN"} for name, value in values.items()}
    rng = np.random.default_rng(0)  # seeded: the same evaluation gives the same file
    samples = []
    for _ in range(RESAMPLES):
        pick = rng.choice(rows, size=int(rows * RESAMPLE_FRACTION), replace=False)
        samples.append(
            compute(y_true[pick], y_pred[pick], None if probabilities is None else probabilities[pick])
        )
    deviations = {name: float(np.std([s.get(name, np.nan) for s in samples])) for name in values}
    return {
        # JSON has no NaN: a metric undefined on some sample (no positive row) gets "NaN", as AWS writes it.
        name: {
            "value": value,
            "standard_deviation": deviations[name] if np.isfinite(deviations[name]) else "NaN",
        }
        for name, value in values.items()
    }


def _binary(actual: np.ndarray, predicted: np.ndarray, probabilities) -> dict[str, float]:
    from sklearn import metrics as skm

    tp = float(np.sum(actual & predicted))
    fp = float(np.sum(~actual & predicted))
    fn = float(np.sum(actual & ~predicted))
    tn = float(np.sum(~actual & ~predicted))
    prevalence = float(actual.mean())
    values = {
        "recall": _ratio(tp, tp + fn),
        "precision": _ratio(tp, tp + fp),
        "accuracy": _ratio(tp + tn, len(actual)),
        "recall_best_constant_classifier": 1.0,
        "precision_best_constant_classifier": prevalence,
        "accuracy_best_constant_classifier": prevalence,
        "true_positive_rate": _ratio(tp, tp + fn),
        "true_negative_rate": _ratio(tn, tn + fp),
        "false_positive_rate": _ratio(fp, fp + tn),
        "false_negative_rate": _ratio(fn, fn + tp),
    }
    if probabilities is not None and 0 < prevalence < 1:
        positive = team_model.CLASSES.index(team_model.POSITIVE_CLASS)
        values["auc"] = float(skm.roc_auc_score(actual, probabilities[:, positive]))
    for label, beta in (("f0_5", 0.5), ("f1", 1.0), ("f2", 2.0)):
        values[label] = float(skm.fbeta_score(actual, predicted, beta=beta, zero_division=0))
    for label, beta in (("f0_5", 0.5), ("f1", 1.0), ("f2", 2.0)):
        # Precision = prevalence and recall = 1 for a classifier that always says "positive".
        values[f"{label}_best_constant_classifier"] = _ratio(
            (1 + beta**2) * prevalence, beta**2 * prevalence + 1
        )
    return values


def _multiclass(y_true: np.ndarray, y_pred: np.ndarray, _probabilities) -> dict[str, float]:
    # The same signature as _binary (_with_deviation calls either); multiclass AUC is not reported.
    from sklearn import metrics as skm

    labels = list(range(len(team_model.CLASSES)))
    weighted = {"labels": labels, "average": "weighted", "zero_division": 0}
    majority = np.bincount(y_true, minlength=len(labels)).argmax()
    return {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "accuracy_best_constant_classifier": float(np.mean(y_true == majority)),
        "weighted_recall": float(skm.recall_score(y_true, y_pred, **weighted)),
        "weighted_precision": float(skm.precision_score(y_true, y_pred, **weighted)),
        "weighted_f0_5": float(skm.fbeta_score(y_true, y_pred, beta=0.5, **weighted)),
        "weighted_f1": float(skm.f1_score(y_true, y_pred, **weighted)),
        "weighted_f2": float(skm.fbeta_score(y_true, y_pred, beta=2.0, **weighted)),
    }


def _regression(y_true: np.ndarray, y_pred: np.ndarray, _probabilities) -> dict[str, float]:
    from sklearn import metrics as skm

    mse = float(skm.mean_squared_error(y_true, y_pred))
    return {
        "mae": float(skm.mean_absolute_error(y_true, y_pred)),
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "r2": float(skm.r2_score(y_true, y_pred)),
    }


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def _thin(values: np.ndarray) -> list[float]:
    if len(values) > CURVE_POINTS:
        values = values[np.linspace(0, len(values) - 1, CURVE_POINTS).round().astype(int)]
    return [round(float(v), 6) for v in values]
