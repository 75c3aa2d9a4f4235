"""`mlops trigger` / `mlops status`: the CLI finds its project's function URL through Lambda's API
and posts the request SigV4-signed (a local stand-in running the real handler's service bound to
the alias), STS from moto server for the default function name."""

from __future__ import annotations

import pytest

from mlops_cli import dag_runs
from mlops_cli.dotenv import read_dotenv
from mlops_cli.main import main
from mlops_core.names import DAG_DEPLOYMENT, DAG_TRAINING
from mlops_core.platform_names import PlatformNames

pytestmark = pytest.mark.integration
CI = ["--pipeline-id", "2164813478", "--job-id", "12345678901"]


def train_args(tmp_path, *extra):
    return [
        "trigger",
        "training",
        "--project",
        "fraud",
        "--model",
        "scorer",
        "--image-tag",
        "1.4.0",
        "--environment",
        "dev",
        *CI,
        "--output",
        str(tmp_path / "trigger.env"),
        *extra,
    ]


def test_trigger_training_prints_run_id_and_link_and_writes_dotenv(fake_lambda, tmp_path, capsys):
    assert (
        main(
            train_args(
                tmp_path,
                "--source-commit",
                "abc123",
                "--hyperparameter",
                "max_depth=6",
                "--hyperparameter",
                "objective=binary:logistic",
            )
        )
        == 0
    )
    out = capsys.readouterr().out
    ((function, alias, event),) = fake_lambda.invocations
    assert alias == "fraud"  # the project's own alias
    # Default function name from the platform naming (account from STS on moto).
    assert function == PlatformNames(environment="dev", account="123456789012", region="eu-west-1").trigger_function
    assert event["conf"] == {
        "project": "fraud",
        "model": "scorer",
        "image_tag": "1.4.0",
        "retraining": False,
        "source_commit": "abc123",
        "hyperparameters": {"max_depth": 6, "objective": "binary:logistic"},
    }
    run_id = "gl-zsvgrq-5o6aqt1"
    assert f"started DAG run {run_id} of {DAG_TRAINING}: queued" in out
    assert f"https://airflow.example/dags/{DAG_TRAINING}/runs/{run_id}" in out
    assert read_dotenv(tmp_path / "trigger.env") == {
        "DAG_NAME": "training",
        "DAG_ID": DAG_TRAINING,
        "DAG_RUN_ID": run_id,
        "DAG_RUN_URL": f"https://airflow.example/dags/{DAG_TRAINING}/runs/{run_id}",
    }


def test_a_repeated_trigger_from_the_same_job_gets_the_same_run_not_a_second_one(fake_lambda, tmp_path, capsys):
    assert main(train_args(tmp_path)) == 0
    assert main(train_args(tmp_path)) == 0
    assert "already started: DAG run gl-zsvgrq-5o6aqt1" in capsys.readouterr().out
    assert len(fake_lambda.airflow.runs) == 1


def test_trigger_deployment_with_model_version(fake_lambda, tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_TRIGGER_FUNCTION", "custom-trigger")
    assert (
        main(
            [
                "trigger",
                "deployment",
                "--project",
                "fraud",
                "--model",
                "scorer",
                "--model-version",
                "1.4.0+r0",
                *CI,
                "--output",
                str(tmp_path / "t.env"),
            ]
        )
        == 0
    )
    ((function, alias, event),) = fake_lambda.invocations
    assert (function, alias) == ("custom-trigger", "fraud") and event["dag_id"] == DAG_DEPLOYMENT
    assert event["conf"] == {"project": "fraud", "model": "scorer", "model_version": "1.4.0+r0"}


def test_invalid_request_exits_2_with_the_lambdas_message(fake_lambda, tmp_path, capsys):
    code = main(
        [
            "trigger",
            "training",
            "--project",
            "Fraud",
            "--model",
            "scorer",
            "--image-tag",
            "1.0.0",
            "--function-name",
            "f",
            *CI,
            "--output",
            str(tmp_path / "t"),
        ]
    )
    assert code == 2
    assert "trigger refused (400 invalid_request): conf.project:" in capsys.readouterr().err
    assert fake_lambda.airflow.calls == []


def test_a_request_for_another_project_through_an_alias_is_refused(fake_lambda, tmp_path, monkeypatch, capsys):
    # MLOPS_TRIGGER_URL pointing at another project's alias: the function serves its alias's project only.
    monkeypatch.setenv("MLOPS_TRIGGER_URL", f"{fake_lambda.url}/url/f/malware/")
    assert main(train_args(tmp_path)) == 2
    assert "this function alias serves project 'malware', not 'fraud'" in capsys.readouterr().err
    assert fake_lambda.airflow.calls == []


def test_missing_ci_ids_are_usage_errors(fake_lambda, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CI_PIPELINE_ID", raising=False)
    code = main(
        [
            "trigger",
            "training",
            "--project",
            "fraud",
            "--model",
            "scorer",
            "--image-tag",
            "1.0.0",
            "--function-name",
            "f",
            "--job-id",
            "1",
            "--output",
            str(tmp_path / "t"),
        ]
    )
    assert code == 2 and "--pipeline-id is required (or set CI_PIPELINE_ID)" in capsys.readouterr().err
    assert fake_lambda.invocations == []


def test_status_reports_state_and_exit_code(fake_lambda, tmp_path, capsys):
    assert main(train_args(tmp_path)) == 0
    base = [
        "status",
        "--project",
        "fraud",
        "--dag",
        "training",
        "--run-id",
        "gl-zsvgrq-5o6aqt1",
        "--function-name",
        "f",
    ]
    assert main(base) == 0
    assert "status of DAG run gl-zsvgrq-5o6aqt1" in capsys.readouterr().out
    fake_lambda.airflow.runs[(DAG_TRAINING, "gl-zsvgrq-5o6aqt1")]["state"] = "failed"
    assert main(base) == 1
    assert (
        main(["status", "--project", "fraud", "--dag", "training", "--run-id", "gl-1-1", "--function-name", "f"]) == 1
    )
    assert "not_found" in capsys.readouterr().err


def test_wait_polls_until_the_run_finishes(fake_lambda, tmp_path, monkeypatch, capsys):
    states = iter(["running", "running", "success"])

    def advance(seconds):
        fake_lambda.airflow.runs[(DAG_TRAINING, "gl-zsvgrq-5o6aqt1")]["state"] = next(states)

    monkeypatch.setattr(dag_runs, "_sleep", advance)
    assert main(train_args(tmp_path, "--wait", "--interval", "1")) == 0
    assert "state: running" in capsys.readouterr().out


def test_wait_times_out_with_exit_3(fake_lambda, tmp_path, monkeypatch, capsys):
    clock = iter(range(0, 10_000, 10))
    monkeypatch.setattr(dag_runs, "_clock", lambda: next(clock))
    monkeypatch.setattr(dag_runs, "_sleep", lambda s: None)
    assert main(train_args(tmp_path, "--wait", "--timeout", "60", "--interval", "10")) == 3
    assert "still queued after 60 s" in capsys.readouterr().err


def test_unknown_function_is_a_clear_error(fake_lambda, tmp_path, capsys):
    # Lambda's API has no such function: GetFunctionUrlConfig answers ResourceNotFoundException.
    code = main(
        [
            "trigger",
            "training",
            "--project",
            "fraud",
            "--model",
            "scorer",
            "--image-tag",
            "1.0.0",
            "--function-name",
            "nope",
            *CI,
            "--output",
            str(tmp_path / "t"),
        ]
    )
    assert code == 1 and "no function URL for project 'fraud' on nope: ResourceNotFoundException" in (
        capsys.readouterr().err
    )
