"""A model team's own repository, made as the template's README says: copy ``model_template/``,
replace ``src/team_model/`` with your model and ``data/`` with your sample data, set the model's
names in ``.gitlab-ci.yml``. This one is a small regressor (ridge regression of a service's
latency from its load), generated in a test's temporary directory."""

from __future__ import annotations

import csv
import random
import re
import shutil
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[2] / "model_template"
FEATURES = ("requests_per_second", "payload_kb", "cache_hit_ratio")
LABEL = "latency_ms"

SCHEMA = f'''"""One minute of a service's load, and its mean latency (the target)."""

PROBLEM_TYPE = "regression"
FEATURES = {FEATURES!r}
LABEL = {LABEL!r}
CLASSES = ()
POSITIVE_CLASS = None
'''

MODEL = '''"""Ridge regression: latency grows with load and payload, falls with cache hits."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlops_runtime.hyperparameters import Hyperparameter

MODEL_FILE = "model.joblib"

HYPERPARAMETERS = {
    "alpha": Hyperparameter(float, 1.0, minimum=0.0, maximum=1000.0, help="L2 regularisation"),
    "seed": Hyperparameter(int, 0, minimum=0, help="random seed of the validation split"),
}


def fit(X: np.ndarray, y: np.ndarray, hyperparameters: dict):
    from sklearn.linear_model import Ridge

    return Ridge(alpha=hyperparameters["alpha"]).fit(X, y)


def predict(model, X: np.ndarray) -> list[dict]:
    return [{"value": value} for value in model.predict(X).round(4).tolist()]


def save(model, directory: Path) -> None:
    import joblib

    joblib.dump(model, Path(directory) / MODEL_FILE)


def load(directory: Path):
    import joblib

    return joblib.load(Path(directory) / MODEL_FILE)
'''


def latency(requests: float, payload: float, hits: float, noise: float) -> float:
    return 20.0 + 0.05 * requests + 0.8 * payload - 15.0 * hits + noise


def _write(path: Path, rows: list[list[float]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([*FEATURES, LABEL])
        writer.writerows(rows)


def make_regression_repo(path: Path, *, project: str, model: str, rows: int = 600, seed: int = 7) -> Path:
    """The repository at ``path``: the template's runtime, Dockerfile, CI file and requirements,
    with a regressor as ``team_model`` and its sample data."""
    shutil.copytree(TEMPLATE, path, ignore=shutil.ignore_patterns("__pycache__", ".venv", ".opt_ml", ".pytest_cache"))
    package = path / "src" / "team_model"
    for stale in package.glob("*.py"):
        stale.unlink()
    (package / "__init__.py").write_text(
        "from team_model.model import HYPERPARAMETERS, fit, load, predict, save\n"
        "from team_model.schema import CLASSES, FEATURES, LABEL, POSITIVE_CLASS, PROBLEM_TYPE\n"
    )
    (package / "schema.py").write_text(SCHEMA)
    (package / "model.py").write_text(MODEL)
    shutil.rmtree(path / "data")
    rng = random.Random(seed)  # noqa: S311 - reproducible sample data, not security
    records = []
    for _ in range(rows):
        requests, payload, hits = rng.uniform(10, 500), rng.uniform(1, 64), rng.uniform(0, 1)
        records.append(
            [
                round(requests, 2),
                round(payload, 2),
                round(hits, 3),
                round(latency(requests, payload, hits, rng.gauss(0, 0.5)), 3),
            ]
        )
    split = rows * 4 // 5
    _write(path / "data" / "train" / "train.csv", records[:split])
    _write(path / "data" / "test" / "test.csv", records[split:])
    ci = path / ".gitlab-ci.yml"
    text = re.sub(r"MODEL_PROJECT: \S+", f"MODEL_PROJECT: {project}", ci.read_text())
    ci.write_text(re.sub(r"MODEL_NAME: \S+", f"MODEL_NAME: {model}", text))
    return path
