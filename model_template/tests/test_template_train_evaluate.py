"""The training and processing-job entry points, run as processes on a temporary /opt/ml tree."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from template_testing import copy_sample_data, entry_point_env, run_entry_point, write_hyperparameters

from mlops_runtime import contract, failure

pytestmark = pytest.mark.integration


def test_train_writes_the_model_and_metadata(trained_root):
    root, _ = trained_root
    model_dir = root / "model"
    assert (model_dir / "model.joblib").is_file()
    metadata = json.loads((model_dir / "metadata.json").read_text())
    assert metadata["hyperparameters"]["n_estimators"] == 80  # the string "80" was parsed
    assert metadata["features"][0] == "cmdline_length"
    assert metadata["classes"] == ["benign", "malicious"]
    assert metadata["rows"] == {"train": 1920, "validation": 480}
    assert not (root / "output" / "failure").exists()


def test_training_metrics_are_scrapable_with_the_published_metric_definitions(trained_root):
    _, result = trained_root
    scraped = {}
    for definition in contract.metric_definitions("classification"):
        match = re.search(definition["Regex"], result.stdout)
        assert match, f"{definition['Name']} not found in the training log"
        scraped[definition["Name"]] = float(match.group(1))
    assert set(scraped) == {
        f"{s}:{m}" for s in ("train", "validation") for m in contract.CLASSIFICATION_METRICS
    }
    # A learnable but not trivial problem: the example model must be clearly better than chance.
    assert 0.75 < scraped["validation:f1"] < 1.0


def test_evaluation_json_has_the_platform_metrics_and_a_confusion_matrix(evaluated_root):
    root, result = evaluated_root
    report = json.loads((root / "processing" / "evaluation" / "evaluation.json").read_text())
    assert report["schema_version"] == 1
    assert report["problem_type"] == "classification"
    assert list(report["metrics"]) == list(contract.CLASSIFICATION_METRICS)
    assert all(0.0 <= v <= 1.0 for v in report["metrics"].values())
    matrix = report["confusion_matrix"]
    assert matrix["labels"] == ["benign", "malicious"]
    assert sum(map(sum, matrix["matrix"])) == report["samples"] == 600
    (tn, fp), (fn, tp) = matrix["matrix"]
    assert report["metrics"]["precision"] == pytest.approx(tp / (tp + fp), abs=1e-6)
    assert report["metrics"]["recall"] == pytest.approx(tp / (tp + fn), abs=1e-6)
    assert report["training"]["hyperparameters"]["seed"] == 1  # lineage from the model's metadata
    assert "metric test:f1=" in result.stdout
    assert 0.5 < report["metrics"]["auc"] <= 1.0 and report["metrics"]["log_loss"] > 0


def test_model_quality_json_is_in_sagemakers_format_and_agrees_with_evaluation_json(evaluated_root):
    out = evaluated_root[0] / "processing" / "evaluation"
    report = json.loads((out / "evaluation.json").read_text())
    quality = json.loads((out / "model_quality.json").read_text())["binary_classification_metrics"]
    (tn, fp), (fn, tp) = report["confusion_matrix"]["matrix"]
    # Nested dicts, true label -> predicted label -> count.
    assert quality["confusion_matrix"] == {
        "benign": {"benign": tn, "malicious": fp},
        "malicious": {"benign": fn, "malicious": tp},
    }
    for ours, theirs in (("f1", "f1"), ("precision", "precision"), ("recall", "recall"), ("auc", "auc")):
        assert quality[theirs]["value"] == pytest.approx(report["metrics"][ours], abs=1e-6)
        # 600 rows: the deviation over five 80 % samples is reported (below 200 rows it is "NaN").
        assert 0 < quality[theirs]["standard_deviation"] < 0.1
    assert quality["precision_best_constant_classifier"]["value"] == pytest.approx((fn + tp) / 600)
    roc = quality["receiver_operating_characteristic_curve"]
    assert len(roc["false_positive_rates"]) == len(roc["true_positive_rates"]) <= 101
    assert roc["false_positive_rates"][0] == 0.0 and roc["true_positive_rates"][-1] == 1.0


def test_evaluation_writes_a_confusion_matrix_png(evaluated_root):
    root, _ = evaluated_root
    png = (root / "processing" / "evaluation" / "confusion_matrix.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert width >= 300 and height >= 300


def test_evaluation_writes_the_training_datas_drift_baseline(evaluated_root):
    root, result = evaluated_root
    folder = root / "processing" / "baseline"
    stats = json.loads((folder / contract.BASELINE_STATISTICS_FILE).read_text())
    constraints = json.loads((folder / contract.BASELINE_CONSTRAINTS_FILE).read_text())
    assert stats["dataset"]["item_count"] == 2400  # the whole train channel
    assert [f["name"] for f in stats["features"]] == [f["name"] for f in constraints["features"]]
    assert constraints["monitoring_config"]["distribution_constraints"]["comparison_threshold"] == 0.1
    assert "baseline of 2400 training records written" in result.stdout


def test_evaluate_reads_an_extracted_model_and_the_input_folder_too(trained_root, evaluated_root, tmp_path):
    # In-process (the process path is covered above): the other input layout gives the same report.
    from mlops_runtime import evaluate
    from mlops_runtime.paths import MLPaths

    trained, _ = trained_root
    model_dir = tmp_path / "processing" / "model"
    model_dir.mkdir(parents=True)
    for item in (trained / "model").iterdir():
        (model_dir / item.name).write_bytes(item.read_bytes())
    (tmp_path / "processing" / "input").mkdir()
    (tmp_path / "processing" / "input" / "part-0.csv").write_bytes(
        (trained / "input" / "data" / "test" / "test.csv").read_bytes()
    )
    report = evaluate.run(MLPaths(tmp_path))
    from_archive = json.loads(
        (evaluated_root[0] / "processing" / "evaluation" / "evaluation.json").read_text()
    )
    assert report["metrics"] == from_archive["metrics"]
    assert (tmp_path / "processing" / "evaluation" / "confusion_matrix.png").is_file()


def test_sigterm_to_train_as_pid_1_stops_it_with_a_failure_reason(tmp_path):
    """`docker run IMAGE train` makes train PID 1 of the container's PID namespace, where the kernel
    drops signals without a handler: StopTrainingJob's SIGTERM must still stop it, with a reason."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs unshare and root for a new PID namespace")
    copy_sample_data(tmp_path)
    write_hyperparameters(tmp_path, {"n_estimators": "2000", "learning_rate": "0.01"})  # a minute or more
    process = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-m", "mlops_runtime", "train"],
        env=entry_point_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        trainer = _pid_one_child(process.pid)
        lines = []
        for line in process.stdout:  # wait until it trains: the handler is set by then
            lines.append(line)
            if line.startswith("training on "):
                break
        os.kill(trainer, signal.SIGTERM)
        assert process.wait(timeout=30) == failure.STOPPED_EXIT_CODE, "".join(lines) + process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
    assert (tmp_path / "output" / "failure").read_text().startswith("Stopped: received SIGTERM")
    assert not (tmp_path / "model" / "model.joblib").exists()


def _pid_one_child(unshare_pid: int, timeout: float = 10) -> int:
    """The host pid of the process `unshare --fork` started as PID 1 of the new namespace."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = Path(f"/proc/{unshare_pid}/task/{unshare_pid}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.05)
    raise AssertionError("unshare started no process")


def test_several_training_instances_fail_at_once_with_the_reason(tmp_path):
    copy_sample_data(tmp_path)
    config = tmp_path / "input" / "config" / "resourceconfig.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-1", "algo-2"]}))
    result = run_entry_point("train", tmp_path)
    assert result.returncode == 1
    reason = (tmp_path / "output" / "failure").read_text()
    assert reason.startswith("ResourceConfigError: this training job has 2 instances (algo-1, algo-2)")
    config.write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]}))
    write_hyperparameters(tmp_path, {"n_estimators": "5"})
    assert run_entry_point("train", tmp_path).returncode == 0


def test_fail_training_fails_the_job_with_a_readable_reason(tmp_path):
    copy_sample_data(tmp_path)
    write_hyperparameters(tmp_path, {"fail_training": "true"})
    result = run_entry_point("train", tmp_path)
    assert result.returncode == 1
    reason = (tmp_path / "output" / "failure").read_text()
    assert reason.startswith("DeliberateFailure: fail_training=true was set")
    assert "Traceback" not in reason
    assert not (tmp_path / "model" / "model.joblib").exists()


@pytest.mark.parametrize(
    ("hyperparameters", "expected"),
    [
        (
            {"n_estimators": "many"},
            "HyperparameterError: hyperparameter n_estimators='many' is not a valid int",
        ),
        ({"max_depht": "3"}, "HyperparameterError: unknown hyperparameter(s) max_depht"),
        (
            {"learning_rate": "5"},
            "HyperparameterError: hyperparameter learning_rate=5.0 is above the maximum",
        ),
    ],
)
def test_bad_hyperparameters_fail_with_the_name_in_the_reason(tmp_path, hyperparameters, expected):
    copy_sample_data(tmp_path)
    write_hyperparameters(tmp_path, hyperparameters)
    result = run_entry_point("train", tmp_path)
    assert result.returncode == 1
    assert (tmp_path / "output" / "failure").read_text().startswith(expected)


def test_missing_train_channel_and_bad_rows_fail_with_file_and_line(tmp_path):
    result = run_entry_point("train", tmp_path)
    assert result.returncode == 1
    assert "no train channel" in (tmp_path / "output" / "failure").read_text()

    copy_sample_data(tmp_path)
    train_csv = tmp_path / "input" / "data" / "train" / "train.csv"
    lines = train_csv.read_text().splitlines()
    lines[5] = lines[5].replace(lines[5].split(",")[0], "lots", 1)
    train_csv.write_text("\n".join(lines) + "\n")
    result = run_entry_point("train", tmp_path)
    assert result.returncode == 1
    reason = (tmp_path / "output" / "failure").read_text()
    assert "train.csv:6: column cmdline_length: 'lots' is not a number" in reason


def test_evaluate_without_test_data_exits_non_zero_with_a_message(trained_root, tmp_path):
    (tmp_path / "processing" / "model").mkdir(parents=True)
    result = run_entry_point("evaluate", tmp_path)
    assert result.returncode == 1
    assert "no test data" in (tmp_path / "output" / "message").read_text()
