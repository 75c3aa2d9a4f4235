"""The DAG bundle parses cleanly on this Airflow version, cheaply, with the conf contract users
rely on."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import textwrap

import pytest
from conftest import DAGS_FOLDER, REPO

from mlops_core import names


@pytest.fixture(scope="module")
def dagbag():
    try:
        from airflow.dag_processing.dagbag import DagBag  # Airflow 3

        return DagBag(str(DAGS_FOLDER))
    except ImportError:
        from airflow.models.dagbag import DagBag  # Airflow 2

        return DagBag(str(DAGS_FOLDER), include_examples=False)


def test_no_import_errors_and_exactly_the_platform_dags(dagbag):
    assert dagbag.import_errors == {}
    assert sorted(dagbag.dags) == sorted([names.DAG_TRAINING, names.DAG_DEPLOYMENT, names.DAG_RETRAINING])


def test_only_dag_files_are_parsed_not_the_helper_package(dagbag):
    parsed = sorted(stat.file.rsplit("/", 1)[-1] for stat in dagbag.dagbag_stats)
    assert parsed == ["mlops_deployment.py", "mlops_retraining.py", "mlops_training_evaluation.py"]


def test_triggerable_dags_have_no_schedule_and_retraining_runs_daily(dagbag):
    for dag_id in names.TRIGGERABLE_DAGS:
        assert dagbag.dags[dag_id].timetable.can_be_scheduled is False
    retraining = dagbag.dags[names.DAG_RETRAINING].timetable
    # Airflow 3's SDK timetable exposes .expression, Airflow 2's core one ._expression.
    assert (getattr(retraining, "expression", None) or getattr(retraining, "_expression", None)) == "0 0 * * *"
    assert dagbag.dags[names.DAG_RETRAINING].catchup is False


def test_every_task_and_dag_notifies_on_failure(dagbag):
    from mlops_dags import notify

    for dag in dagbag.dags.values():
        assert dag.on_failure_callback is notify.on_dag_failure, dag.dag_id
        for task in dag.tasks:
            callbacks = task.on_failure_callback
            callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
            assert notify.on_task_failure in callbacks, f"{dag.dag_id}.{task.task_id}"


def test_training_graph_registers_only_after_training_evaluation_and_gate(dagbag):
    dag = dagbag.dags[names.DAG_TRAINING]
    upstream = dag.get_task("register").upstream_task_ids
    assert {"train", "evaluate", "quality_gate", "production_model", "prepare_run"} <= upstream
    assert dag.get_task("notify_result").upstream_task_ids >= {"register"}
    assert dag.get_task("train").upstream_task_ids == {"prepare_run"}


def test_deployment_graph_smoke_tests_after_deploying_and_notifies_last(dagbag):
    dag = dagbag.dags[names.DAG_DEPLOYMENT]
    assert dag.get_task("create_model").upstream_task_ids >= {"approve_package"}
    assert dag.get_task("deploy_endpoint").upstream_task_ids >= {"create_model"}
    assert dag.get_task("smoke_test").upstream_task_ids >= {"deploy_endpoint", "apply_autoscaling"}
    assert dag.get_task("notify_deployed").upstream_task_ids >= {"smoke_test"}
    assert dag.max_active_runs == 1


def validate(dag, conf):
    params = copy.deepcopy(dag.params)
    params.update(conf)
    return params.validate()


GOOD = {"project": "fraud", "model": "scorer", "image_tag": "1.4.2"}


def test_training_conf_defaults(dagbag):
    resolved = validate(dagbag.dags[names.DAG_TRAINING], GOOD)
    assert resolved == {
        **GOOD,
        "data_path": None,
        "hyperparameters": {},
        "retraining": False,
        "source_commit": None,
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("image_tag", "1.4"),
        ("image_tag", "1.4.2-rc.1"),
        ("image_tag", "latest"),
        ("project", "Fraud"),
        ("model", "a--b"),
        ("model", "x" * 41),
        ("data_path", "/local/path"),
        ("hyperparameters", {"depth": [1, 2]}),
        ("retraining", "yes"),
    ],
)
def test_bad_training_conf_is_rejected_naming_the_field(dagbag, field, value):
    from airflow.exceptions import ParamValidationError as Legacy

    try:
        from airflow.sdk.exceptions import ParamValidationError
    except ImportError:
        ParamValidationError = Legacy
    with pytest.raises((ParamValidationError, Legacy)) as error:
        validate(dagbag.dags[names.DAG_TRAINING], {**GOOD, field: value})
    assert f"Invalid input for param {field}:" in str(error.value)


def test_missing_required_field_is_named(dagbag):
    params = copy.deepcopy(dagbag.dags[names.DAG_TRAINING].params)
    params.update({"project": "fraud", "image_tag": "1.0.0"})
    with pytest.raises(Exception, match="Invalid input for param model: No value passed"):
        params.validate()


def test_deployment_conf_accepts_a_version_or_a_package_arn(dagbag):
    dag = dagbag.dags[names.DAG_DEPLOYMENT]
    assert validate(dag, {"project": "fraud", "model": "scorer", "model_version": "1.4.2+r3"})["model_version"]
    arn = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/fraud--scorer/3"
    assert validate(dag, {"project": "fraud", "model": "scorer", "model_package_arn": arn})["model_package_arn"]
    with pytest.raises(Exception, match="Invalid input for param model_version"):
        validate(dag, {"project": "fraud", "model": "scorer", "model_version": "1.4.2"})


def test_parsing_does_no_aws_work_and_no_heavy_imports():
    """Parse every DAG file in a fresh interpreter; boto3, slack_sdk and the pydantic models of the
    pipeline configuration must not be imported (the DAG processor parses these files every 30 s)."""
    script = textwrap.dedent(f"""
        import json, sys
        sys.path[:0] = [{str(DAGS_FOLDER)!r}, {str(REPO)!r}]
        try:
            from airflow.dag_processing.dagbag import DagBag
            bag = DagBag({str(DAGS_FOLDER)!r})
        except ImportError:
            from airflow.models.dagbag import DagBag
            bag = DagBag({str(DAGS_FOLDER)!r}, include_examples=False)
        heavy = ["boto3", "botocore", "slack_sdk", "mlops_core.pipeline_config", "mlops_dags.training",
                 "mlops_dags.deployment", "airflow.providers.amazon.aws.hooks.base_aws"]
        print(json.dumps({{"dags": sorted(bag.dags), "errors": list(bag.import_errors),
                           "loaded": [m for m in heavy if m in sys.modules]}}))
    """)
    # An unreachable endpoint: any AWS call at parse time would fail or hang here.
    env = {**__import__("os").environ, "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["errors"] == [] and len(result["dags"]) == 3
    assert result["loaded"] == []
