"""The three DAGs run for real (dag.test()) against a local AWS (local_aws: moto server plus a
local SageMaker with AWS's status transitions), with SNS read back through SQS and Slack payloads
captured by a local HTTP sink.

Scenarios build on each other per model, in file order: train -> deploy -> retrain -> update ...
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from harness import ARTIFACT_BUCKET, PROJECT, deploy, evaluation, new_model, run_dag, train

from mlops_core import names

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def assert_autoscaling(env, m, autoscaling: dict) -> None:
    """The serving variant's scalable target and target-tracking policy, from the model's config."""
    resource = f"endpoint/{m.config.endpoint_name}/variant/AllTraffic"
    scaling = env["boto"].client("application-autoscaling")
    [target] = scaling.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[resource])[
        "ScalableTargets"
    ]
    assert target["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (autoscaling["min_capacity"], autoscaling["max_capacity"])
    [policy] = scaling.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=resource)["ScalingPolicies"]
    assert policy["PolicyType"] == "TargetTrackingScaling"
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == autoscaling["target_invocations_per_instance"]
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == "SageMakerVariantInvocationsPerInstance"
    assert (tracking["ScaleInCooldown"], tracking["ScaleOutCooldown"]) == (
        autoscaling["scale_in_cooldown_seconds"],
        autoscaling["scale_out_cooldown_seconds"],
    )


def test_training_success_registers_a_pending_candidate_and_notifies(env):
    m = new_model(env, "ok-train")
    result = train(env, m, hyperparameters={"max_depth": 4, "balanced": True})
    assert result.state == "success", result.tasks

    [package] = m.packages()
    meta = package["CustomerMetadataProperties"]
    run = names.RunName.parse(meta["run_name"])
    assert (run.stem, str(run.version), run.retrain) == (names.model_stem(PROJECT, m.model), "1.0.0", 0)
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    assert meta["model_version"] == "1.0.0+r0" and meta["source_commit"] == "abc1234"
    assert meta["training_data"] == m.config.training_data_uri and meta["metric.f1"] == "0.9"
    assert meta["training_job"].endswith(f":training-job/{meta['run_name']}")
    sm = env["boto"].client("sagemaker")
    job = sm.describe_training_job(TrainingJobName=meta["run_name"])
    assert job["AlgorithmSpecification"]["TrainingImage"] == f"{m.config.image_repository_uri}:1.0.0"
    assert job["HyperParameters"] == {"max_depth": "4", "balanced": "true"}
    assert job["OutputDataConfig"]["S3OutputPath"].startswith(f"s3://{ARTIFACT_BUCKET}/{PROJECT}/{m.model}/runs/")
    # The registry shows SageMaker's model-quality file; the image is linked from the metadata.
    evaluation_prefix = package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"].rsplit("/", 1)[0]
    assert package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"].endswith("/evaluation/model_quality.json")
    assert meta["confusion_matrix"] == f"{evaluation_prefix}/confusion_matrix.png"
    spec = package["InferenceSpecification"]
    assert "text/csv" in spec["SupportedResponseMIMETypes"] and "application/jsonlines" in spec["SupportedContentTypes"]

    [sns] = m.sns_messages()
    assert sns["subject"] == f"[mlops-itest] Training {PROJECT}/{m.model} 1.0.0+r0: ready to deploy"
    assert "f1: 0.9000" in sns["message"] and "nothing (first deployment)" in sns["message"]
    assert '"model_version": "1.0.0+r0"' in sns["message"]
    [slack] = env["slack"].payloads(m.slack_path)
    assert slack["text"] == sns["subject"]
    assert slack["blocks"][0]["type"] == "header" and "ready to deploy" in slack["blocks"][0]["text"]["text"]

    cloudwatch = env["boto"].client("cloudwatch")
    metrics = cloudwatch.list_metrics(Namespace=names.MODEL_METRICS_NAMESPACE)["Metrics"]
    published = {x["MetricName"] for x in metrics if {"Name": "Model", "Value": m.model} in x["Dimensions"]}
    assert published == {"f1", "precision", "recall", "accuracy"}


def test_training_failure_is_notified_and_registers_nothing(env):
    m = new_model(env, "bad-train")
    env["aws"].update_scenario(
        {
            "training": {
                "rules": [
                    {
                        "when": {"name_contains": names.model_stem(PROJECT, m.model)},
                        "fail": "AlgorithmError: out of memory",
                    }
                ]
            }
        }
    )
    result = train(env, m)
    assert result.state == "failed"
    assert result.tasks["train"] == "failed"
    assert result.tasks["register"] == "upstream_failed" and result.tasks["notify_result"] == "upstream_failed"
    assert m.packages() == []

    # One failure, one notice per channel: the failed task, SageMaker's FailureReason (read by the
    # operator once the triggerer saw the job fail) and a link to the task's log in the Airflow UI
    # (Airflow 3: /dags/<id>/runs/..., 2: /dags/<id>/grid?...). No second, run-level notice.
    [task_note] = m.sns_messages()
    assert task_note["subject"] == f"[mlops-itest] FAILED {names.DAG_TRAINING}.train {PROJECT}/{m.model}"
    assert "AlgorithmError: out of memory" in task_note["message"]
    assert re.search(r"training job itest--bad-train-v1-0-0-r0-\d{14} ended Failed", task_note["message"]), task_note
    log_link = re.search(rf"Log: +(http://\S+/dags/{names.DAG_TRAINING}/\S+)", task_note["message"])
    assert log_link, task_note
    [slack] = env["slack"].payloads(m.slack_path)
    assert slack["text"] == task_note["subject"]
    assert "AlgorithmError: out of memory" in str(slack["blocks"])
    [actions] = [b for b in slack["blocks"] if b["type"] == "actions"]
    assert [(e["text"]["text"], e["url"]) for e in actions["elements"]] == [("View log", log_link.group(1))]
    cloudwatch = env["boto"].client("cloudwatch")
    failures = cloudwatch.list_metrics(
        Namespace=names.PIPELINE_METRICS_NAMESPACE, MetricName=names.PIPELINE_FAILURE_METRIC
    )["Metrics"]
    assert any({"Name": "Dag", "Value": names.DAG_TRAINING} in x["Dimensions"] for x in failures)


def test_candidate_below_the_gate_is_rejected_and_cannot_be_deployed(env):
    m = new_model(env, "weak")
    env["aws"].update_scenario(
        {
            "processing": {
                "rules": [{"when": {"name_contains": names.model_stem(PROJECT, m.model)}, "files": evaluation(0.55)}]
            }
        }
    )
    result = train(env, m)
    assert result.state == "success", result.tasks  # the pipeline worked; the candidate did not
    [package] = m.packages()
    assert package["ModelApprovalStatus"] == "Rejected"
    assert "below the threshold" in package["CustomerMetadataProperties"]["gate"]
    [sns] = m.sns_messages()
    assert "REJECTED by the quality gate" in sns["subject"]
    assert "f1=0.55 is below the threshold 0.8" in sns["message"]

    refused = deploy(env, m, "1.0.0+r0")
    assert refused.state == "failed" and refused.tasks["resolve_package"] == "failed"
    assert m.serving() is None
    assert m.packages()[0]["ModelApprovalStatus"] == "Rejected"
    assert any("was rejected" in x["message"] for x in m.sns_messages())


def test_first_deployment_then_update_then_failed_update_keeps_serving(env):
    autoscaling = {
        "min_capacity": 2,
        "max_capacity": 5,
        "target_invocations_per_instance": 250,
        "scale_in_cooldown_seconds": 600,
        "scale_out_cooldown_seconds": 90,
    }
    m = new_model(env, "served", endpoint={"rollback_alarm_names": ["served-5xx"], "autoscaling": autoscaling})
    assert train(env, m, tag="1.0.0").state == "success"
    m.sns_messages()

    # First deployment: endpoint created, package approved, manifest on the model, autoscaling.
    first = deploy(env, m, "1.0.0+r0")
    assert first.state == "success", first.tasks
    [package] = m.packages()
    run_v1 = package["CustomerMetadataProperties"]["run_name"]
    assert package["ModelApprovalStatus"] == "Approved"
    assert m.serving() == ("InService", run_v1)
    sm = env["boto"].client("sagemaker")
    environment = sm.describe_model(ModelName=run_v1)["PrimaryContainer"]["Environment"]
    assert environment[names.MANIFEST_ENV["model_version"]] == "1.0.0+r0"
    assert environment[names.MANIFEST_ENV["model_name"]] == m.model
    assert environment[names.MANIFEST_ENV["training_data"]] == m.config.training_data_uri
    assert_autoscaling(env, m, autoscaling)
    [sns] = m.sns_messages()
    assert sns["subject"] == f"[mlops-itest] Deployed {PROJECT}/{m.model} 1.0.0+r0 to {m.config.endpoint_name}"
    assert f"#dashboards/dashboard/mlops-itest-{PROJECT}--{m.model}" in sns["message"]
    assert any(b["type"] == "actions" for b in env["slack"].payloads(m.slack_path)[-1]["blocks"])

    # Retrain the serving version (r1) and update the endpoint in place.
    assert train(env, m, tag="1.0.0", retraining=True).state == "success"
    second = deploy(env, m, "1.0.0+r1")
    assert second.state == "success", second.tasks
    run_v2 = next(
        p["CustomerMetadataProperties"]["run_name"]
        for p in m.packages()
        if p["CustomerMetadataProperties"]["model_version"] == "1.0.0+r1"
    )
    assert m.serving() == ("InService", run_v2)
    assert any(f"updated from {run_v1}" in x["message"] for x in m.sns_messages())
    assert_autoscaling(env, m, autoscaling)  # still one target and one policy after the update

    # A new image whose update fails: AWS rolls back and the endpoint keeps serving r1.
    assert train(env, m, tag="1.1.0").state == "success"
    m.sns_messages()
    env["aws"].update_scenario({"endpoints": {"fail_next_updates": 1}})
    failed = deploy(env, m, "1.1.0+r0")
    assert failed.state == "failed"
    assert failed.tasks["deploy_endpoint"] == "failed" and failed.tasks["notify_deployed"] == "upstream_failed"
    assert m.serving() == ("InService", run_v2)
    notes = m.sns_messages()
    assert any(
        "FAILED mlops_deployment.deploy_endpoint" in x["subject"] and f"still serves {run_v2}" in x["message"]
        for x in notes
    ), notes

    # The update succeeds but the new version fails its smoke test (the model container answers
    # 500): the DAG rolls the endpoint back to r1 and fails, notified.
    env["aws"].update_scenario({"endpoints": {"fail_next_updates": 0, "invoke": {"url": env["slack"].url + "/model"}}})
    env["slack"].status["/model/invocations"] = 500
    try:
        broken = deploy(env, m, "1.1.0+r0")
    finally:
        env["aws"].update_scenario({"endpoints": {"invoke": {"url": None}}})
    assert broken.state == "failed" and broken.tasks["smoke_test"] == "failed", broken.tasks
    assert broken.tasks["deploy_endpoint"] == "success"
    assert m.serving() == ("InService", run_v2)
    # One real record from the model's test data, label column removed.
    assert env["slack"].payloads("/model/invocations")[-1] == "120,13\n"
    assert any(f"rolled back: the endpoint serves {run_v2} again" in x["message"] for x in m.sns_messages())


def test_slack_unreachable_does_not_change_the_outcome_and_sns_is_still_sent(env):
    m = new_model(env, "no-slack")
    env["slack"].drop.add(m.slack_path)  # every connection closed before an answer
    result = train(env, m)
    assert result.state == "success", result.tasks
    assert result.tasks["notify_result"] == "success"
    # Slack was tried: once plus the ConnectionErrorRetryHandler's retries, then given up.
    attempts = env["slack"].payloads(m.slack_path)
    assert len(attempts) == 3, attempts
    assert all("ready to deploy" in a["text"] for a in attempts)
    assert result.returned("notify_result") == {
        f"sns:{m.config.notifications.sns_topic_arn}": True,
        f"slack:{m.config.notifications.slack_webhook_secret_name}": False,
    }
    [sns] = m.sns_messages()
    assert "ready to deploy" in sns["subject"]


def test_slack_server_errors_are_retried_then_given_up_without_failing(env):
    m = new_model(env, "slack-500")
    env["slack"].status[m.slack_path] = 500
    result = train(env, m)
    assert result.state == "success", result.tasks
    # One try plus the ServerErrorRetryHandler's retries, then the notification gives up.
    assert len(env["slack"].payloads(m.slack_path)) == 3
    assert len(m.sns_messages()) == 1


def test_retraining_starts_training_with_the_serving_image(env, monkeypatch):
    from mlops_dags import retraining

    m = new_model(env, "nightly")
    off = new_model(env, "nightly-off", retraining={"enabled": False})
    weekly = new_model(env, "weekly", retraining={"interval_days": 7})
    for model in (m, weekly):
        assert train(env, model, tag="2.3.4").state == "success"
        assert deploy(env, model, "2.3.4+r0").state == "success"

    # The next night: a day has passed since these trainings, not a week.
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    monkeypatch.setattr(retraining, "_now", lambda: tomorrow)
    result = run_dag(env["dags"][names.DAG_RETRAINING], None)
    assert result.state == "success", result.tasks
    skipped = result.returned("plan")["skipped"]
    assert f"{PROJECT}/{off.model}: retraining disabled" in skipped
    assert any(line.startswith(f"{PROJECT}/{weekly.model}: last trained ") for line in skipped), skipped
    assert any(line.endswith("retrains every 7 day(s)") for line in skipped), skipped
    from airflow.models.dagrun import DagRun

    models = (m.model, off.model, weekly.model)
    runs = [r for r in DagRun.find(dag_id=names.DAG_TRAINING) if (r.conf or {}).get("model") in models]
    assert [r.conf for r in runs if r.conf.get("retraining")] == [
        {
            "project": PROJECT,
            "model": m.model,
            "image_tag": "2.3.4",
            "retraining": True,
            "source_commit": "abc1234",
        }
    ]
    # A manual run with ignore_interval retrains the weekly model too.
    now = run_dag(env["dags"][names.DAG_RETRAINING], {"ignore_interval": True})
    planned = {c["model"] for c in now.returned("plan")["confs"]}
    assert {m.model, weekly.model} <= planned and off.model not in planned
    # That conf trains retraining number 1 of the serving version.
    retrained = train(env, m, tag="2.3.4", retraining=True)
    assert retrained.state == "success"
    versions = sorted(p["CustomerMetadataProperties"]["model_version"] for p in m.packages())
    assert versions == ["2.3.4+r0", "2.3.4+r1"]


def test_bad_conf_is_refused_before_anything_runs(env):
    with pytest.raises(Exception, match="Invalid input for param image_tag") as refused:
        run_dag(env["dags"][names.DAG_TRAINING], {"project": PROJECT, "model": "any", "image_tag": "latest"})
    assert "ParamValidationError" in type(refused.value).__name__
    sm = env["boto"].client("sagemaker")
    assert sm.list_training_jobs(NameContains=names.model_stem(PROJECT, "any"))["TrainingJobSummaries"] == []


def test_sns_error_does_not_change_the_outcome_and_slack_is_still_sent(env, caplog):
    # A topic that does not exist (deleted, wrong account): every publish fails with NotFound.
    missing_topic = "arn:aws:sns:us-east-1:123456789012:mlops-itest-deleted"
    m = new_model(
        env,
        "no-sns",
        notifications={"sns_topic_arn": missing_topic, "slack_webhook_secret_name": "mlops/itest/slack-no-sns"},
    )
    sns = env["boto"].client("sns")
    with pytest.raises(sns.exceptions.NotFoundException):
        sns.get_topic_attributes(TopicArn=missing_topic)
    result = train(env, m)
    assert result.state == "success", result.tasks
    assert result.tasks["notify_result"] == "success"
    # notify_result returns each channel's outcome: the publish to the missing topic was made and
    # failed (send_sns returns False only when publish raised), Slack was still notified.
    assert result.returned("notify_result") == {f"sns:{missing_topic}": False, "slack:mlops/itest/slack-no-sns": True}
    # ... and logged with AWS's answer.
    [failed] = [r for r in caplog.records if r.name == "mlops_dags.notify" and missing_topic in r.getMessage()]
    assert "failed (the pipeline's outcome is unchanged)" in failed.getMessage()
    assert failed.exc_info and "NotFound" in f"{type(failed.exc_info[1]).__name__} {failed.exc_info[1]}"
    [slack] = env["slack"].payloads(m.slack_path)
    assert "ready to deploy" in slack["text"]


def test_rollback_alarm_in_alarm_during_the_update_rolls_it_back(env):
    m = new_model(env, "guarded")
    assert train(env, m, tag="3.0.0").state == "success"
    assert deploy(env, m, "3.0.0+r0").state == "success"
    serving_before = m.serving()
    assert train(env, m, tag="3.1.0").state == "success"

    # The model's rollback alarm (from its configuration) fires during the blue/green update.
    [alarm] = m.config.endpoint.rollback_alarm_names
    cloudwatch = env["boto"].client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName=alarm,
        Namespace="AWS/SageMaker",
        MetricName="Invocation5XXErrors",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="test: 5xx on the new fleet")
    result = deploy(env, m, "3.1.0+r0")
    assert result.state == "failed" and result.tasks["deploy_endpoint"] == "failed", result.tasks
    assert m.serving() == serving_before
    assert any("rolled back" in x["message"] for x in m.sns_messages())
