"""Session fixtures: train, evaluate and a running server, each once, shared by the tests."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

import pytest
from template_testing import (
    MANIFEST,
    copy_sample_data,
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
def evaluated_root(trained_root, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """A processing-job tree: the training job's model.tar.gz and the test channel."""
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
    result = run_entry_point("evaluate", root)
    assert result.returncode == 0, result.stderr
    return root, result


@pytest.fixture(scope="session")
def server(trained_root, tmp_path_factory):
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
