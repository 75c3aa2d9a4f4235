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
    assert sorted(dagbag.dags) == sorted(
        [names.DAG_TRAINING, names.DAG_DEPLOYMENT, names.DAG_RETRAINING, names.DAG_DRIFT_CHECK]
    )


def test_only_dag_files_are_parsed_not_the_helper_package(dagbag):
    parsed = sorted(stat.file.rsplit("/", 1)[-1] for stat in dagbag.dagbag_stats)
    assert parsed == [
        "mlops_deployment.py",
        "mlops_drift_check.py",
        "mlops_retraining.py",
        "mlops_training_evaluation.py",
    ]


def test_triggerable_dags_have_no_schedule_and_retraining_runs_daily(dagbag):
    for dag_id in names.TRIGGERABLE_DAGS:
        assert dagbag.dags[dag_id].timetable.can_be_scheduled is False
    retraining = dagbag.dags[names.DAG_RETRAINING].timetable
    # Airflow 3's SDK timetable exposes .expression, Airflow 2's core one ._expression.
    assert (getattr(retraining, "expression", None) or getattr(retraining, "_expression", None)) == "0 0 * * *"
    assert dagbag.dags[names.DAG_RETRAINING].catchup is False
    drift = dagbag.dags[names.DAG_DRIFT_CHECK]
    assert (getattr(drift.timetable, "expression", None) or getattr(drift.timetable, "_expression", None)) == (
        "0 * * * *"
    )
    assert drift.catchup is False and drift.max_active_runs == 1


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
    assert dag.get_task("train").upstream_task_ids == set()  # it takes the model's lease and names the run
    assert dag.get_task("evaluate").upstream_task_ids == {"train"}
    assert dag.get_task("quality_gate").upstream_task_ids == {"train", "evaluate"}
    assert {"quality_gate", "train"} <= dag.get_task("register").upstream_task_ids
    assert dag.get_task("notify_result").upstream_task_ids >= {"register"}


def test_deployment_graph_smoke_tests_after_deploying_and_notifies_last(dagbag):
    dag = dagbag.dags[names.DAG_DEPLOYMENT]
    assert dag.get_task("resolve_package").upstream_task_ids == set()  # it takes the model's lease first
    assert dag.get_task("candidate_trial").upstream_task_ids == {"resolve_package"}
    assert dag.get_task("approve_package").upstream_task_ids >= {"candidate_trial"}  # a rejected trial skips it
    assert dag.get_task("create_model").upstream_task_ids >= {"approve_package"}
    assert dag.get_task("create_endpoint_config").upstream_task_ids >= {"create_model"}
    assert dag.get_task("deploy_endpoint").upstream_task_ids >= {"create_endpoint_config"}
    assert dag.get_task("smoke_test").upstream_task_ids >= {"deploy_endpoint", "apply_autoscaling"}
    assert dag.get_task("notify_deployed").upstream_task_ids >= {"smoke_test"}


def test_a_run_first_takes_its_model_lease(dagbag):
    from mlops_dags.operators import StartDeploymentOperator, TrainingJobOperator, _TakesModelLease

    assert isinstance(dagbag.dags[names.DAG_TRAINING].get_task("train"), TrainingJobOperator)
    assert isinstance(dagbag.dags[names.DAG_TRAINING].get_task("train"), _TakesModelLease)
    assert isinstance(dagbag.dags[names.DAG_DEPLOYMENT].get_task("resolve_package"), StartDeploymentOperator)


def test_sagemaker_waits_are_deferrable_provider_operators(dagbag):
    from airflow.providers.amazon.aws.operators.sagemaker import (
        SageMakerEndpointConfigOperator,
        SageMakerEndpointOperator,
        SageMakerModelOperator,
        SageMakerProcessingOperator,
        SageMakerTrainingOperator,
    )

    training, deployment = dagbag.dags[names.DAG_TRAINING], dagbag.dags[names.DAG_DEPLOYMENT]
    waits = {
        training.get_task("train"): SageMakerTrainingOperator,
        training.get_task("evaluate"): SageMakerProcessingOperator,
        deployment.get_task("deploy_endpoint"): SageMakerEndpointOperator,
    }
    for operator, provider_class in waits.items():
        assert isinstance(operator, provider_class) and operator.deferrable, operator.task_id
    # In a task group mapped over the due checks (one per model).
    check = dagbag.dags[names.DAG_DRIFT_CHECK].get_task("drift.check")
    assert isinstance(check, SageMakerProcessingOperator) and check.deferrable
    assert isinstance(deployment.get_task("create_model"), SageMakerModelOperator)
    assert isinstance(deployment.get_task("create_endpoint_config"), SageMakerEndpointConfigOperator)


def test_runs_are_limited_per_model_not_per_platform(dagbag):
    # Runs of one model are serialized by the claim tasks' lease; the DAGs themselves allow as many
    # runs as the triggerers can hold (the issue measured max_active_runs=8 and =1 as platform caps).
    for dag_id in names.TRIGGERABLE_DAGS:
        assert dagbag.dags[dag_id].max_active_runs >= 1000, dag_id


def test_timeouts_cover_the_longest_legitimate_wait():
    from mlops_dags import settings

    # The documented limits: a training job runs at most 28 days (SageMaker's MaxRuntimeInSeconds
    # limit), an evaluation at most 24 h (the pipeline configuration's), a blue/green update at
    # most its MaximumExecutionTimeoutInSeconds.
    assert names.TRAINING_MAX_RUNTIME_LIMIT_SECONDS == 28 * 24 * 3600
    longest_run = names.TRAINING_MAX_RUNTIME_LIMIT_SECONDS + names.EVALUATION_MAX_RUNTIME_LIMIT_SECONDS
    assert settings.TRAINING_RUN_SECONDS > longest_run
    assert settings.training_run_timeout().total_seconds() >= 2 * settings.TRAINING_RUN_SECONDS
    default_endpoint_wait = settings.BLUE_GREEN_MAX_SECONDS + settings.WAIT_MARGIN_SECONDS
    assert default_endpoint_wait > settings.BLUE_GREEN_MAX_SECONDS + settings.BLUE_GREEN_BAKE_SECONDS
    assert settings.deployment_run_timeout().total_seconds() >= 2 * 4 * settings.endpoint_timeout_seconds()


def test_run_timeouts_of_the_dags_are_the_derived_ones(dagbag):
    from mlops_dags import settings

    assert dagbag.dags[names.DAG_TRAINING].dagrun_timeout == settings.training_run_timeout()
    assert dagbag.dags[names.DAG_DEPLOYMENT].dagrun_timeout == settings.deployment_run_timeout()


def test_job_waits_poll_long_enough_for_hours_long_jobs(monkeypatch):
    from mlops_dags import settings, waits

    monkeypatch.setenv("MLOPS_CHECK_INTERVAL_SECONDS", "30")
    monkeypatch.delenv("MLOPS_ENDPOINT_TIMEOUT_SECONDS")  # shortened for the integration tests
    ten_hours = settings.job_wait_seconds(10 * 3600)
    trigger = waits.wait_trigger("job", "training", ten_hours)
    # The provider's default (60 attempts every 30 s) gives up after 30 minutes.
    assert trigger.max_polls * trigger.delay_seconds >= 11 * 3600
    endpoint = waits.wait_trigger("ep", "endpoint", settings.endpoint_timeout_seconds())
    assert (
        endpoint.max_polls * endpoint.delay_seconds
        >= settings.BLUE_GREEN_MAX_SECONDS + settings.BLUE_GREEN_BAKE_SECONDS
    )


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
        "reason": None,
        "drifted_features": [],
        "drift_check": None,
    }


def test_a_drift_retraining_conf_is_accepted(dagbag):
    conf = {**GOOD, "retraining": True, "reason": "drift", "drifted_features": ["amount"], "drift_check": "c-1"}
    assert validate(dagbag.dags[names.DAG_TRAINING], conf)["drifted_features"] == ["amount"]


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
        ("reason", "bored"),
        ("drifted_features", "amount"),
        ("drifted_features", [""]),
        ("drift_check", "a b"),
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


def test_parsing_does_no_aws_work_and_imports_nothing_heavy_beyond_what_airflow_pre_imports():
    """Parse every DAG file in a fresh interpreter as Airflow's DAG processor does: it first imports
    the ``airflow.*`` modules each DAG file names (parsing_pre_import_modules, once, before forking
    a parser per file), then parses. The parse itself must import no boto3, slack_sdk or pipeline
    code (the processor parses these files every 30 s) and make no AWS call."""
    script = textwrap.dedent(f"""
        import importlib, json, sys
        sys.path[:0] = [{str(DAGS_FOLDER)!r}, {str(REPO)!r}]
        try:
            from airflow.dag_processing.dagbag import DagBag
        except ImportError:
            from airflow.models.dagbag import DagBag
        from airflow.utils.file import iter_airflow_imports
        import pathlib
        files = sorted(str(p) for p in pathlib.Path({str(DAGS_FOLDER)!r}).glob("*.py"))
        for path in files:
            for module in iter_airflow_imports(path):
                importlib.import_module(module)
        before = set(sys.modules)
        try:
            bag = DagBag({str(DAGS_FOLDER)!r})
        except TypeError:
            bag = DagBag({str(DAGS_FOLDER)!r}, include_examples=False)
        heavy = ["boto3", "botocore", "aiobotocore", "slack_sdk", "mlops_core.pipeline_config",
                 "mlops_dags.training", "mlops_dags.deployment", "mlops_dags.drift"]
        print(json.dumps({{"dags": sorted(bag.dags), "errors": list(bag.import_errors),
                           "loaded": [m for m in heavy if m in sys.modules and m not in before],
                           "pre_imported_provider": "airflow.providers.amazon.aws.operators.sagemaker" in before}}))
    """)
    # An unreachable endpoint: any AWS call at parse time would fail or hang here.
    env = {**__import__("os").environ, "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["errors"] == [] and len(result["dags"]) == 4
    assert result["pre_imported_provider"] is True
    assert result["loaded"] == []
