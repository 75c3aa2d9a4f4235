"""Session fixtures: train, evaluate and a running server, each once, shared by the tests."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from template_testing import (
    MANIFEST,
    copy_sample_data,
    entry_point_env,
    run_entry_point,
    start_server,
    stop_server,
    write_hyperparameters,
)


@pytest.fixture(scope="session")
def trained_root(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    root = tmp_path_factory.mktemp("opt_ml")
    copy_sample_data(root)
    # As SageMaker passes them: every value a string.
    write_hyperparameters(root, {"n_estimators": "80", "max_depth": "3", "seed": "1"})
    result = run_entry_point("train", root)
    assert result.returncode == 0, result.stderr
    return root, result


@pytest.fixture(scope="session")
def _evaluation_started(trained_root, tmp_path_factory):
    """Starts the processing job as soon as the model exists, without waiting for it: it runs while
    the server starts and the serving tests run (the suite's wall time on 2 cores drops by the
    evaluation's start-up). ``evaluated_root`` collects the result."""
    trained, _ = trained_root
    root = tmp_path_factory.mktemp("opt_ml_processing")
    model_input = root / "processing" / "model"
    model_input.mkdir(parents=True)
    with tarfile.open(model_input / "model.tar.gz", "w:gz") as archive:
        for item in (trained / "model").iterdir():
            archive.add(item, arcname=item.name)
    test_input = root / "processing" / "test"
    test_input.mkdir(parents=True)
    (test_input / "test.csv").write_bytes((trained / "input" / "data" / "test" / "test.csv").read_bytes())
    train_input = root / "processing" / "train"  # for the drift baseline
    train_input.mkdir(parents=True)
    (train_input / "train.csv").write_bytes((trained / "input" / "data" / "train" / "train.csv").read_bytes())
    process = subprocess.Popen(
        [sys.executable, "-m", "mlops_runtime", "evaluate"],
        env=entry_point_env(root),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    yield root, process
    if process.poll() is None:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def evaluated_root(_evaluation_started) -> tuple[Path, subprocess.CompletedProcess]:
    """A processing-job tree (the training job's model.tar.gz and the test channel), evaluated."""
    root, process = _evaluation_started
    stdout, stderr = process.communicate(timeout=120)
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    assert result.returncode == 0, result.stderr
    return root, result


@pytest.fixture(scope="session")
def server(trained_root, _evaluation_started, tmp_path_factory):
    root, _ = trained_root
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    running = start_server(
        root,
        log,
        SAGEMAKER_MODEL_SERVER_WORKERS="2",
        SAGEMAKER_MODEL_SERVER_TIMEOUT="17",
        MLOPS_MAX_PAYLOAD_BYTES="65536",
        MLOPS_MAX_RECORDS="500",
        **MANIFEST,
    )
    yield running
    stop_server(running)
