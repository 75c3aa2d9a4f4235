"""Orchestration at platform scale, with dag.test() against the local AWS (both Airflow versions):
the SageMaker waits are deferred to the triggerer, retried tasks resume what their run started,
runs of one model are serialized, retraining plans any number of models, registry look-ups do not
grow with a model's history. Each test is one of the faults issue 11 measured.

dag.test() runs a deferred task's trigger inline, in the test process; a real scheduler and
triggerer (no worker slot held, run timeouts) are in test_live_scheduler.py.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from harness import ARTIFACT_BUCKET, PROJECT, deploy, new_model, run_dag, train

from mlops_core import names

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def triggers(monkeypatch):
    """The SageMaker waits that ran in a trigger (kind, name), in order."""
    from mlops_dags.waits import SageMakerWaitTrigger

    seen = []
    original = SageMakerWaitTrigger.run

    async def recording_run(self):
        seen.append((self.job_type.lower(), self.job_name))
        async for event in original(self):
            yield event

    monkeypatch.setattr(SageMakerWaitTrigger, "run", recording_run)
    return seen


@pytest.fixture
def retried(dagbag, monkeypatch):
    """Give tasks of a DAG one retry, at once (the suite runs without retries)."""

    def retry(dag_id: str, *task_ids: str) -> None:
        for task_id in task_ids:
            task = dagbag.dags[dag_id].get_task(task_id)
            monkeypatch.setattr(task, "retries", 1)
            monkeypatch.setattr(task, "retry_delay", timedelta(0))

    return retry


def die_after_first(monkeypatch, cls, method: str, what: str):
    """The first call of ``cls.method`` succeeds at AWS, then the task dies (a lost worker)."""
    original = getattr(cls, method)
    calls = []

    def dying(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        calls.append(args)
        if len(calls) == 1:
            raise RuntimeError(f"worker lost right after {what}")
        return result

    monkeypatch.setattr(cls, method, dying)
    return calls


def training_jobs(env, model: str) -> list[dict]:
    sm = env["boto"].client("sagemaker")
    return sm.list_training_jobs(NameContains=names.run_name_prefix(PROJECT, model), MaxResults=100)[
        "TrainingJobSummaries"
    ]


def try_number(result, task_id: str) -> int:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        ti = (
            session.query(TaskInstance)
            .filter_by(dag_id=result.dag_id, run_id=result.run_id, task_id=task_id, map_index=-1)
            .one()
        )
        return ti.try_number


def test_training_and_evaluation_wait_in_the_triggerer(env, triggers):
    m = new_model(env, "deferred")
    result = train(env, m)
    assert result.state == "success", result.tasks
    run_name = result.returned("train")["run_name"]
    assert triggers == [("training", run_name), ("processing", run_name)]


def test_a_retried_training_task_waits_for_its_own_job_instead_of_starting_another(env, retried, monkeypatch):
    from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

    m = new_model(env, "resumed")
    retried(names.DAG_TRAINING, "train")
    created = die_after_first(monkeypatch, SageMakerHook, "create_training_job", "CreateTrainingJob")
    result = train(env, m)
    assert result.state == "success", result.tasks
    assert len(created) == 1 and try_number(result, "train") == 2
    [job] = training_jobs(env, m.model)  # one job: the retry waited for the first try's
    [package] = m.packages()
    assert package["CustomerMetadataProperties"]["training_job"].endswith(f"/{job['TrainingJobName']}")


def test_a_failed_job_is_not_retried(env, retried):
    m = new_model(env, "fails-once")
    retried(names.DAG_TRAINING, "train")
    stem = names.model_stem(PROJECT, m.model)
    env["aws"].update_scenario(
        {"training": {"rules": [{"when": {"name_contains": stem}, "fail": "AlgorithmError: nan"}]}}
    )
    result = train(env, m)
    assert result.tasks["train"] == "failed" and try_number(result, "train") == 1
    assert len(training_jobs(env, m.model)) == 1


def test_a_retried_deployment_still_rolls_back_a_failing_smoke_test(env, retried, monkeypatch):
    """Issue 11's reproduction: the task died right after UpdateEndpoint; its retry must still know
    the previous config, so that the failing smoke test rolls the endpoint back."""
    from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

    m = new_model(env, "retried-deploy")
    assert train(env, m, tag="1.0.0").state == "success"
    assert deploy(env, m, "1.0.0+r0").state == "success"
    serving_before = m.serving()
    assert train(env, m, tag="1.1.0").state == "success"
    m.sns_messages()

    retried(names.DAG_DEPLOYMENT, "deploy_endpoint")
    updates = die_after_first(monkeypatch, SageMakerHook, "update_endpoint", "UpdateEndpoint")
    broken_model = f"/model-{m.model}"
    env["slack"].status[f"{broken_model}/invocations"] = 500
    env["aws"].update_scenario({"endpoints": {"invoke": {"url": env["slack"].url + broken_model}}})
    try:
        result = deploy(env, m, "1.1.0+r0")
    finally:
        env["aws"].update_scenario({"endpoints": {"invoke": {"url": None}}})
    assert len(updates) == 1 and try_number(result, "deploy_endpoint") == 2
    assert result.tasks["deploy_endpoint"] == "success" and result.tasks["smoke_test"] == "failed", result.tasks
    assert result.returned("deploy_endpoint") == {"previous_config": serving_before[1], "action": "updated"}
    assert m.serving() == serving_before
    notes = m.sns_messages()
    assert any(
        f"rolled back: the endpoint serves {serving_before[1]} again" in x["message"] and "ModelError" in x["message"]
        for x in notes
    ), notes


def test_a_second_run_of_a_model_waits_for_the_first_and_gets_the_next_retraining_number(env, monkeypatch):
    """Runs of one model never overlap: while another run holds the model, train waits
    (deferred) and nothing is started; then the run takes the model over."""
    from mlops_dags import compat, leases

    m = new_model(env, "serialized")
    assert train(env, m).state == "success"  # r0
    holder = "manual__holder-of-serialized"
    uri = names.run_lease_uri(ARTIFACT_BUCKET, PROJECT, m.model, names.DAG_TRAINING)
    s3 = env["boto"].client("s3")
    taken = leases.claim(s3, uri, dag_id=names.DAG_TRAINING, run_id=holder, is_active=lambda lease: False)
    assert taken.run_id == holder
    holder_running = threading.Event()
    holder_running.set()
    real = compat.dag_run_is_active
    monkeypatch.setattr(
        compat,
        "dag_run_is_active",
        lambda context, dag_id, run_id: holder_running.is_set() if run_id == holder else real(context, dag_id, run_id),
    )
    jobs_while_held = []

    def holder_finishes():
        time.sleep(4)
        jobs_while_held.append(len(training_jobs(env, m.model)))
        holder_running.clear()

    finisher = threading.Thread(target=holder_finishes)
    finisher.start()
    result = train(env, m)  # r1, once the holder has finished
    finisher.join()
    assert result.state == "success", result.tasks
    assert jobs_while_held == [1]  # only r0's job while the holder ran
    assert result.returned("train")["waited_seconds"] >= 3
    assert result.returned("train")["model_version"] == "1.0.0+r1"
    assert leases.read(s3, uri)[0].run_id == result.run_id


def test_retraining_skips_models_in_progress_and_plans_any_number_in_batches(env, monkeypatch):
    from airflow.models.dagrun import DagRun
    from mlops_dags import compat, leases

    # Four serving models, named to sort after every other test's model; the second has a training
    # run in progress. Their endpoints are created directly: this test is about planning.
    models = [new_model(env, f"zz-batch-{letter}") for letter in "abcd"]
    sm, s3 = env["boto"].client("sagemaker"), env["boto"].client("s3")
    two_days_ago = datetime.now(UTC) - timedelta(days=2)
    for m in models:
        run = names.RunName.new(PROJECT, m.model, "4.0.0", 0, two_days_ago)
        sm.create_model(
            ModelName=str(run),
            ExecutionRoleArn=m.config.sagemaker_role_arn,
            PrimaryContainer={"Image": f"{m.config.image_repository_uri}:4.0.0", "ModelDataUrl": "s3://x/m.tar.gz"},
        )
        sm.create_endpoint_config(
            EndpointConfigName=str(run),
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": str(run),
                    "InstanceType": "ml.m5.large",
                    "InitialInstanceCount": 1,
                }
            ],
        )
        sm.create_endpoint(EndpointName=m.config.endpoint_name, EndpointConfigName=str(run))
    in_progress = "manual__training-of-zz-batch-b"
    uri = names.run_lease_uri(ARTIFACT_BUCKET, PROJECT, models[1].model, names.DAG_TRAINING)
    leases.claim(s3, uri, dag_id=names.DAG_TRAINING, run_id=in_progress, is_active=lambda lease: False)
    real = compat.dag_run_is_active
    monkeypatch.setattr(compat, "dag_run_is_active", lambda c, d, r: True if r == in_progress else real(c, d, r))
    monkeypatch.setenv("MLOPS_RETRAINING_BATCH_SIZE", "2")
    deadline = time.monotonic() + 30
    while {s["EndpointStatus"] for s in sm.list_endpoints(NameContains="zz-batch")["Endpoints"]} != {"InService"}:
        assert time.monotonic() < deadline
        time.sleep(0.5)

    planned, conf = [], {"after": f"{PROJECT}/zz-batch"}
    for _ in range(3):
        result = run_dag(env["dags"][names.DAG_RETRAINING], conf)
        assert result.state == "success", result.tasks
        plan = result.returned("plan")
        assert len(plan["confs"]) <= 2
        planned.append([c["model"] for c in plan["confs"]])
        if plan["continue_after"] is None:
            assert result.tasks["continue_planning"] == "skipped"
            break
        assert any(line.startswith(f"{PROJECT}/zz-batch-b: run {in_progress} ") for line in plan["skipped"])
        follow_ups = [r for r in DagRun.find(dag_id=names.DAG_RETRAINING) if (r.conf or {}).get("after")]
        conf = {"after": plan["continue_after"], "ignore_interval": False}
        assert conf in [r.conf for r in follow_ups]  # the follow-up run this run started
    assert planned == [["zz-batch-a", "zz-batch-c"], ["zz-batch-d"]]
    started = [
        r.conf["model"] for r in DagRun.find(dag_id=names.DAG_TRAINING) if "zz-batch" in (r.conf or {}).get("model", "")
    ]
    assert sorted(started) == ["zz-batch-a", "zz-batch-c", "zz-batch-d"]


def _start_training_job(sm, m, name: str, *, max_runtime_seconds: int, airflow_run_id: str | None = None) -> None:
    """A training job of model ``m``'s 1.0.0 image started outside the DAGs (what an earlier run left)."""
    from mlops_dags.training import RUN_ID_TAG

    tags = {"Tags": [{"Key": RUN_ID_TAG, "Value": airflow_run_id}]} if airflow_run_id else {}
    sm.create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": f"{m.config.image_repository_uri}:1.0.0", "TrainingInputMode": "File"},
        RoleArn=m.config.sagemaker_role_arn,
        OutputDataConfig={"S3OutputPath": f"s3://{ARTIFACT_BUCKET}/x"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": max_runtime_seconds},
        **tags,
    )


def test_a_version_registered_twice_is_refused_rather_than_one_picked(env):
    """Before runs of a model were serialized, two runs could both register 1.0.0+r0."""
    m = new_model(env, "twice")
    sm, s3 = env["boto"].client("sagemaker"), env["boto"].client("s3")
    sm.create_model_package_group(ModelPackageGroupName=m.config.model_package_group_name)
    env["aws"].update_scenario({"training": {"require_input_data": False}})
    for minute in (1, 2):
        run = str(names.RunName.new(PROJECT, m.model, "1.0.0", 0, datetime(2026, 1, 1, 0, minute, tzinfo=UTC)))
        _start_training_job(sm, m, run, max_runtime_seconds=60)
        package = sm.create_model_package(
            ModelPackageGroupName=m.config.model_package_group_name,
            InferenceSpecification={
                "Containers": [{"Image": f"{m.config.image_repository_uri}:1.0.0", "ModelDataUrl": "s3://x/m.tar.gz"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            CustomerMetadataProperties={"run_name": run, "model_version": "1.0.0+r0"},
        )["ModelPackageArn"]
        record = names.registration_uri(ARTIFACT_BUCKET, PROJECT, m.model, run).removeprefix(f"s3://{ARTIFACT_BUCKET}/")
        s3.put_object(Bucket=ARTIFACT_BUCKET, Key=record, Body=json.dumps({"package_arn": package, "status": "x"}))
    result = deploy(env, m, "1.0.0+r0")
    assert result.state == "failed" and result.tasks["resolve_package"] == "failed"
    assert m.serving() is None
    assert any(
        "was registered 2 times" in x["message"] and "deploy one of them by model_package_arn" in x["message"]
        for x in m.sns_messages()
    )


def test_registry_and_run_look_ups_do_not_grow_with_the_model_history(env, monkeypatch):
    from botocore.client import BaseClient

    calls = Counter()
    original = BaseClient._make_api_call

    def counting(self, operation, params):
        calls[operation] += 1
        return original(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", counting)
    m = new_model(env, "history")
    per_run = []
    for _ in range(3):  # r0 .. r2
        calls.clear()
        assert train(env, m).state == "success"
        per_run.append(
            {k: calls[k] for k in ("DescribeModelPackage", "ListModelPackages", "ListTrainingJobs", "ListModels")}
        )
    assert per_run[1] == per_run[2], per_run  # r2 looks up no more than r1
    assert per_run[2]["DescribeModelPackage"] <= 1  # at most the group's newest package
    calls.clear()
    assert deploy(env, m, "1.0.0+r2").state == "success"
    assert calls["DescribeModelPackage"] == 1 and calls["ListModelPackages"] == 0


def test_a_timed_out_run_stops_its_jobs_and_is_notified_and_counted_once(env, dagbag):
    """What the DAG's failure callback does when Airflow times a run out (the scheduler's part is in
    test_live_scheduler.py): the run's SageMaker jobs in progress are stopped, not another run's."""
    from types import SimpleNamespace

    from mlops_dags import notify

    m = new_model(env, "timed-out")
    env["aws"].update_scenario({"training": {"delay_seconds": 600, "require_input_data": False}})
    sm = env["boto"].client("sagemaker")
    jobs = {}
    for airflow_run, minute in (("scheduled__timed-out", 1), ("manual__another-run", 2)):
        name = str(names.RunName.new(PROJECT, m.model, "1.0.0", minute, datetime(2026, 1, 1, 0, minute, tzinfo=UTC)))
        _start_training_job(sm, m, name, max_runtime_seconds=3600, airflow_run_id=airflow_run)
        jobs[airflow_run] = name
    train_task = SimpleNamespace(task_id="train", state="skipped", log_url="http://airflow/log/train")
    notify.on_dag_failure(
        {
            "dag": dagbag.dags[names.DAG_TRAINING],
            "run_id": "scheduled__timed-out",
            "params": {"project": PROJECT, "model": m.model},
            "ti": train_task,
            "reason": "timed_out",
        }
    )
    status = {run: sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] for run, name in jobs.items()}
    assert status == {"scheduled__timed-out": "Stopping", "manual__another-run": "InProgress"}
    [note] = m.sns_messages()
    assert "the run exceeded its dagrun_timeout (timed_out)" in note["message"]
    assert "Failed tasks: train (unfinished)" in note["message"]
    assert len(env["slack"].payloads(m.slack_path)) == 1
    failures = (
        env["boto"]
        .client("cloudwatch")
        .list_metrics(Namespace=names.PIPELINE_METRICS_NAMESPACE, MetricName=names.PIPELINE_FAILURE_METRIC)["Metrics"]
    )
    assert any({"Name": "Dag", "Value": names.DAG_TRAINING} in x["Dimensions"] for x in failures)
    for name in jobs.values():  # leave nothing running for the next tests
        if sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "InProgress":
            sm.stop_training_job(TrainingJobName=name)
