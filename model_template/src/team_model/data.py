"""Deterministic synthetic process events for the example model (no download, same seed -> same rows).

Benign and malicious processes are drawn from overlapping distributions, plus a little label noise,
so the task is learnable but not trivially separable (a realistic F1 is about 0.9, not 1.0).

    python -m team_model.data OUT_DIR   # writes OUT_DIR/train/train.csv and OUT_DIR/test/test.csv
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from team_model.schema import CLASSES, FEATURES, LABEL

DEFAULT_SEED = 20261125
MALICIOUS_RATE = 0.2
LABEL_NOISE = 0.02
TRAIN_ROWS = 2400
TEST_ROWS = 600


def _draw(rng: np.random.Generator, n: int, malicious: bool) -> np.ndarray:
    m = malicious
    columns = {
        "cmdline_length": np.round(rng.lognormal(5.3 if m else 4.2, 0.8 if m else 0.6, n)),
        "cmdline_entropy": np.clip(rng.normal(4.6 if m else 3.7, 0.55 if m else 0.45, n), 0.5, 6.5),
        "encoded_command": rng.random(n) < (0.35 if m else 0.02),
        "parent_is_office": rng.random(n) < (0.3 if m else 0.06),
        "image_signed": rng.random(n) < (0.3 if m else 0.88),
        "runs_from_user_writable": rng.random(n) < (0.55 if m else 0.12),
        "child_processes": rng.poisson(2.5 if m else 0.6, n),
        "network_connections": rng.poisson(5.0 if m else 2.0, n),
        "distinct_remote_ports": rng.poisson(3.0 if m else 1.2, n),
        "registry_writes": rng.poisson(1.5 if m else 0.2, n),
        "files_written": rng.poisson(18 if m else 6, n),
        "hour_of_day": (rng.integers(0, 24, n) if m else np.clip(np.round(rng.normal(13, 3, n)), 0, 23)),
    }
    return np.column_stack([np.asarray(columns[name], dtype=float) for name in FEATURES])


def generate(rows: int, seed: int = DEFAULT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """``rows`` events as (features in ``FEATURES`` order, class index per row)."""
    rng = np.random.default_rng(seed)
    malicious = rng.random(rows) < MALICIOUS_RATE
    X = np.empty((rows, len(FEATURES)))
    X[~malicious] = _draw(rng, int((~malicious).sum()), malicious=False)
    X[malicious] = _draw(rng, int(malicious.sum()), malicious=True)
    y = malicious.astype(int)
    flip = rng.random(rows) < LABEL_NOISE
    y[flip] = 1 - y[flip]
    return X, y


def write_csv(path: Path, X: np.ndarray, y: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([*FEATURES, LABEL])
        for row, target in zip(X, y, strict=True):
            writer.writerow([_fmt(v) for v in row] + [CLASSES[target]])


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.4f}"


def write_dataset(out_dir: Path, seed: int = DEFAULT_SEED) -> tuple[Path, Path]:
    """The sample data set as SageMaker channels: ``train/train.csv`` and ``test/test.csv``."""
    X, y = generate(TRAIN_ROWS + TEST_ROWS, seed)
    train, test = Path(out_dir) / "train" / "train.csv", Path(out_dir) / "test" / "test.csv"
    write_csv(train, X[:TRAIN_ROWS], y[:TRAIN_ROWS])
    write_csv(test, X[TRAIN_ROWS:], y[TRAIN_ROWS:])
    return train, test


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    for path in write_dataset(args.out_dir, args.seed):
        print(path)


if __name__ == "__main__":
    main()
