"""The team's model: replace this package's contents with your own model.

The platform runtime (``mlops_runtime``) imports exactly these names, so keep them:

- ``PROBLEM_TYPE``: ``"classification"`` or ``"regression"`` (decides which metrics evaluate writes);
- ``FEATURES``: the ordered names of the numeric input features (CSV column order for serving);
- ``LABEL``: the target column in training/test CSV files;
- ``CLASSES``: the class names, index ``i`` = encoded class ``i`` (classification only);
- ``POSITIVE_CLASS``: the class whose precision/recall/F1 are reported (binary classification);
- ``HYPERPARAMETERS``: the accepted hyperparameters with their types and defaults;
- ``fit(X, y, hyperparameters)``, ``predict(model, X)``, ``save(model, directory)``, ``load(directory)``.
"""

from team_model.model import HYPERPARAMETERS, fit, load, predict, save
from team_model.schema import CLASSES, FEATURES, LABEL, POSITIVE_CLASS, PROBLEM_TYPE

__all__ = [
    "CLASSES",
    "FEATURES",
    "HYPERPARAMETERS",
    "LABEL",
    "POSITIVE_CLASS",
    "PROBLEM_TYPE",
    "fit",
    "load",
    "predict",
    "save",
]
