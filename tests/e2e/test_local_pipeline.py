"""The whole pipeline on one machine, as ``make demo`` runs it: the CDK app's local environment in
the local AWS, the unmodified DAGs in a real Airflow 3 (its own virtualenv, as subprocesses), the
model template's real train/evaluate/serve processes, the trigger Lambda's handler, the ``mlops``
CI tool, SNS read back through SQS and Slack payloads from a local webhook sink.

One platform per module, with the stack tests' fixture project (not projects/, which model teams
change): success path (first training, deployment, retraining, then the update: a shadow trial on
live traffic that promotes the retrained version), then a commit whose training fails, then the
trials' other outcomes on the same endpoint: a deliberately worse candidate rejected by its shadow
trial, and an A/B test won by the next candidate. Needs ``.venvs/airflow-3.3.1``
(scripts/airflow_venv.sh 3.3.1).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from local_mode import scenario
from local_mode.airflow import DEFAULT_VENV
from local_mode.platform import LocalPlatform
from mlops_core import names

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.skipif(not (DEFAULT_VENV / "bin" / "airflow").exists(), reason="run scripts/airflow_venv.sh 3.3.1"),
]

FIXTURE_PROJECTS = Path(__file__).resolve().parents[1] / "stacks" / "fixture_projects"
PROJECT, MODEL = "example-team", "classifier"


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    state = tmp_path_factory.mktemp("local-mode")
    with LocalPlatform(
        state_dir=state, say=lambda text: None, projects_dir=FIXTURE_PROJECTS, models=[f"{PROJECT}/{MODEL}"]
    ) as running:
        yield running


@pytest.fixture(scope="module")
def model(platform):
    return platform.model()


@pytest.fixture(scope="module")
def story(platform, model):
    journal = scenario.Journal()
    first = scenario.train(platform, model, journal, label="first")
    assert first.run.state == "success", (first.run.tasks, platform.log_locations())
    deployed = scenario.deploy(platform, model, journal, label="first", model_version=first.model_version)
    retrained = scenario.retrain(platform, [model], journal)[model.key]
    assert retrained.run.state == "success", (retrained.run.tasks, platform.log_locations())
    # The fixture's classifier deploys with strategy shadow: requests arrive while the trial bakes.
    updated = scenario.deploy(
        platform, model, journal, label="update", model_version=retrained.model_version, traffic=True
    )
    return {"first": first, "deployed": deployed, "retrained": retrained, "updated": updated, "journal": journal}


@pytest.fixture(scope="module")
def failure(platform, model, story):
    return scenario.failing_training(platform, model, story["journal"])


def test_every_model_of_the_environment_is_published_and_the_selected_one_runs(platform):
    published = sorted(p.parent.name for p in platform.airflow.dags_folder.glob(f"pipelines/{PROJECT}/*/pipeline.json"))
    assert published == ["classifier", "regressor"]  # the fixture project's two ModelPipelines
    assert [m.key for m in platform.models] == [f"{PROJECT}/{MODEL}"]


def test_first_training_versions_the_image_and_registers_a_candidate(platform, story):
    first = story["first"]
    assert first.version["IMAGE_TAG"] == "0.1.0" and first.version["PREVIOUS_VERSION"] == ""  # mlops image release
    assert first.trigger["status"] == 201 and first.trigger["created"] is True  # through the trigger Lambda
    assert all(task["state"] == "success" for task in first.run.tasks.values()), first.run.tasks
    meta = first.package["CustomerMetadataProperties"]
    assert meta["model_version"] == "0.1.0+r0"
    assert meta["image_uri"] == f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{PROJECT}/{MODEL}:0.1.0"
    # Real metrics of the template's classifier on its test split, above the configured gate (0.85).
    assert 0.85 <= first.metrics["f1"] <= 1.0 and 0.0 < first.metrics["precision"] <= 1.0


def test_training_notifications_arrive_by_sns_and_slack(story):
    first = story["first"]
    [sns] = first.sns
    assert sns["subject"] == f"[mlops-local] Training {PROJECT}/{MODEL} 0.1.0+r0: ready to deploy"
    assert f"f1: {story['first'].metrics['f1']:.4f}" in sns["message"]
    assert "nothing (first deployment)" in sns["message"]
    [slack] = first.slack
    assert slack["text"] == sns["subject"]
    assert slack["blocks"][0]["type"] == "header"


def test_deployment_serves_real_predictions_with_the_manifest(platform, story):
    deployed = story["deployed"]
    assert deployed.run.state == "success", deployed.run.tasks
    assert deployed.trigger["status"] == 201
    answer = deployed.answer
    assert [p["label"] for p in answer["predictions"]] == ["benign", "malicious"]  # the first two test rows
    assert answer["model"]["model_name"] == MODEL
    assert answer["model"]["model_version"] == "0.1.0+r0"
    assert answer["model"]["training_data"] == names.training_data_uri(
        platform.model().config["data_bucket"], PROJECT, MODEL
    )
    assert answer["model"]["source_commit"] == "0123abc"
    [sns] = deployed.sns
    assert "0.1.0+r0" in sns["subject"] and names.endpoint_name(PROJECT, MODEL) in sns["message"]
    [slack] = deployed.slack
    # SNS cuts subjects at 100 characters ("..."); Slack gets the whole line.
    assert slack["text"].startswith(sns["subject"].removesuffix("...")) and "0.1.0+r0" in slack["text"]


def test_retraining_gives_the_next_version_and_updates_the_endpoint_in_place(platform, story):
    retrained, deployed = story["retrained"], story["deployed"]
    assert retrained.trigger["via"] == names.DAG_RETRAINING
    meta = retrained.package["CustomerMetadataProperties"]
    assert retrained.model_version == "0.1.0+r1" and meta["retraining"] == "true"
    assert "0.1.0+r1" in retrained.sns[0]["subject"]
    assert retrained.sns[0]["subject"].endswith("ready to deploy")
    updated = story["updated"]
    assert updated.run.state == "success", updated.run.tasks
    assert updated.run.tasks["candidate_trial"]["state"] == "success"
    assert updated.traffic.sent >= 20 and updated.traffic.refused == []  # production answered every request
    assert updated.endpoint["EndpointName"] == deployed.endpoint["EndpointName"]
    assert updated.endpoint["EndpointConfigName"] != deployed.endpoint["EndpointConfigName"]
    assert updated.answer["model"]["model_version"] == "0.1.0+r1"
    document, _ = platform.invoke_endpoint(platform.model())
    assert document["model"]["model_version"] == "0.1.0+r1"


def test_the_printed_curl_and_boto3_commands_call_the_endpoint(platform, story):
    """What --keep-running prints, run as a person pastes it into a shell."""
    access = platform.endpoint_access(platform.model())
    assert access.url.endswith(f"/endpoints/{names.endpoint_name(PROJECT, MODEL)}/invocations")
    for command in (access.curl, access.boto3):
        done = subprocess.run(
            ["bash", "-c", command], capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"}
        )
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout)
        assert answer["model"]["model_version"] == "0.1.0+r1"
        assert [p["label"] for p in answer["predictions"]] == ["benign"]  # the first test row


def test_a_failed_training_is_notified_and_deploys_nothing(platform, failure):
    training = failure.training
    assert training.version["IMAGE_TAG"] == "0.2.0"  # feat: bumps the minor version
    assert training.run.state == "failed" and training.run.tasks["train"]["state"] == "failed"
    assert training.package is None
    assert failure.nothing_deployed
    subjects = [m["subject"] for m in training.sns]
    assert f"[mlops-local] FAILED {names.DAG_TRAINING}.train {PROJECT}/{MODEL}" in subjects
    text = json.dumps(training.sns)
    assert "fail_training" in text  # the template's own failure reason, through SageMaker's FailureReason
    assert any("FAILED" in payload["text"] for payload in training.slack)
    document, _ = platform.invoke_endpoint(platform.model())
    assert document["model"]["model_version"] == "0.1.0+r1"  # still the version that worked


@pytest.fixture(scope="module")
def drift(platform, model, story):
    """After the story, with 0.1.0+r1 serving: first traffic like the test data (no drift), then
    the same records shifted far from the training data (scenario.shifted)."""
    journal = story["journal"]
    calm = scenario.drift(platform, model, journal, label="unshifted", shift=False)
    shifted = scenario.drift(platform, model, journal, label="shifted", shift=True)
    return {"calm": calm, "shifted": shifted}


def test_traffic_like_the_training_data_is_checked_and_starts_no_retraining(platform, drift):
    calm = drift["calm"]
    assert calm.check.state == "success", calm.check.tasks
    summary = calm.summary
    # Every request since the update was captured and checked (the 200, the update's own 2-record
    # invocation, and the trial's live traffic that arrived after the schedule was recorded).
    assert calm.requests == 200 and summary["conclusive"] and summary["records"] >= 202
    assert summary["drifted"] == [] and summary["model_version"] == "0.1.0+r1"
    assert calm.alarm["StateValue"] == "OK"
    assert calm.retraining is None
    assert calm.alarm_actions == []  # the alarm never published to the drift topic


def test_shifted_traffic_drifts_fires_the_alarm_and_retrains_with_the_features_in_the_notice(platform, drift):
    shifted = drift["shifted"]
    assert shifted.check.state == "success", shifted.check.tasks
    summary = shifted.summary
    assert summary["records"] == 200 and summary["window_start"] == drift["calm"].summary["window_end"]
    drifted = [feature["name"] for feature in summary["drifted"]]
    assert drifted and all(f["distance"] > f["threshold"] for f in summary["drifted"])
    assert shifted.alarm["StateValue"] == "ALARM"
    assert [action["status"] for action in shifted.alarm_actions] == ["Published"]
    retraining = shifted.retraining
    assert retraining is not None, "the drift alarm started no Training & Evaluation run"
    conf = retraining.run.conf
    assert conf["reason"] == "drift" and conf["drifted_features"] == drifted
    assert conf["drift_check"] == summary["check_name"] and conf["image_tag"] == "0.1.0"
    assert retraining.run.state == "success", retraining.run.tasks
    assert retraining.model_version == "0.1.0+r2"  # a retraining of the serving image, registered as any
    [sns] = retraining.sns
    assert sns["subject"].startswith(f"[mlops-local] Drift retraining {PROJECT}/{MODEL} 0.1.0+r2")
    assert all(name in sns["message"] for name in drifted)
    assert "Violations report:" in sns["message"] and "Dashboard:" in sns["message"]
    assert any(drifted[0] in json.dumps(payload) for payload in retraining.slack)
    assert 0 < shifted.loop_seconds < 120


def test_the_update_ran_as_a_shadow_trial_judged_on_live_traffic_and_captured_pairs(story):
    updated = story["updated"]
    assert updated.trial_outcome.startswith("promoted: ")
    [notice] = [m for m in updated.sns if m["subject"].startswith("[mlops-local] Shadow trial")]
    assert notice["subject"] == f"[mlops-local] Shadow trial of {PROJECT}/{MODEL} 0.1.0+r1 passed"
    table = notice["message"].split("\n\n", 1)[1].splitlines()
    assert table[0].split() == ["metric", "production", "candidate", "criterion", "holds"]
    # The same model retrained on the same data: every captured pair agrees.
    agreement = next(line for line in table if line.startswith("prediction agreement"))
    assert "100.00 % of" in agreement and agreement.split()[-4:] == [">=", "90.00", "%", "yes"]
    assert not [line for line in table[1:] if line.endswith(" no")]  # every criterion held


def publish_deployment(platform, deployment: dict) -> None:
    """What `cdk deploy` publishes after the team changes its ModelPipeline's deployment setting: the
    model's pipeline.json in the DAG folder, which every DAG task reads."""
    from mlops_core.pipeline_config import PipelineConfig, dumps

    path = platform.airflow.dags_folder / names.pipeline_config_path(PROJECT, MODEL)
    path.write_text(dumps(PipelineConfig.model_validate({**json.loads(path.read_text()), "deployment": deployment})))


@pytest.fixture(scope="module")
def worse(platform, model, story):
    """A new image whose every answer is a 500 (a fault local AWS puts in front of its real model),
    deployed while production serves 0.1.0+r1: its shadow trial must reject it."""
    candidate = scenario.train(platform, model, story["journal"], label="worse", commit="feat: a worse model")
    assert candidate.run.state == "success", candidate.run.tasks
    tag = candidate.version["IMAGE_TAG"]
    rule = {"when": {"image_contains": f"{MODEL}:{tag}"}, "invoke": {"status": 500, "in_front_of_container": True}}
    platform.aws.update_scenario({"endpoints": {"rules": [rule]}})
    try:
        result = scenario.deploy(
            platform, model, story["journal"], label="worse", model_version=candidate.model_version, traffic=True
        )
    finally:
        platform.aws.update_scenario({"endpoints": {"rules": []}})
    return candidate, result


def test_a_worse_candidate_is_rejected_by_its_shadow_trial_with_the_evidence(platform, model, worse):
    candidate, result = worse
    assert result.run.state == "success", result.run.tasks  # the DAG did its job: the candidate was judged
    assert result.run.tasks["candidate_trial"]["state"] == "skipped"
    assert result.run.tasks["deploy_endpoint"]["state"] == "skipped"
    assert result.traffic.refused == []  # production answered every request while the shadow failed
    [package] = [p for p in platform.packages(model) if p["ModelPackageArn"] == candidate.package["ModelPackageArn"]]
    assert package["ModelApprovalStatus"] == "Rejected"
    assert package["ApprovalDescription"].startswith("Rejected by its shadow trial: error rate 100.00 % vs 0.00 %")
    assert "no captured pair" in package["ApprovalDescription"]  # a failing shadow has no answers to compare
    [notice] = [m for m in result.sns if "Shadow trial" in m["subject"]]
    assert notice["subject"].endswith(f"{candidate.model_version} failed")
    document, _ = platform.invoke_endpoint(model)
    assert document["model"]["model_version"] == "0.1.0+r1"  # production unchanged


@pytest.fixture(scope="module")
def ab_test(platform, model, story, worse):
    """The team switches the model to A/B tests; the next candidate is tested against 0.1.0+r1."""
    publish_deployment(
        platform,
        {"strategy": "ab", "bake_seconds": 8, "ab": {"traffic_shares": [0.5], "min_invocations": 10}},
    )
    candidate = scenario.train(platform, model, story["journal"], label="a/b", commit="fix: a better model")
    assert candidate.run.state == "success", candidate.run.tasks
    result = scenario.deploy(
        platform, model, story["journal"], label="a/b", model_version=candidate.model_version, traffic=True
    )
    return candidate, result


def test_an_ab_test_concludes_with_the_winner_serving_alone_and_the_outcome_recorded(platform, model, ab_test):
    candidate, result = ab_test
    assert result.run.state == "success" and result.run.tasks["candidate_trial"]["state"] == "success", result.run.tasks
    assert result.trial_outcome.startswith("promoted: error_rate 0.00 % not above production's 0.00 %")
    [notice] = [m for m in result.sns if "A/B test" in m["subject"]]
    assert notice["subject"] == f"[mlops-local] A/B test of {PROJECT}/{MODEL} {candidate.model_version} won"
    endpoint = platform.endpoint(model)
    assert [v["VariantName"] for v in endpoint["ProductionVariants"]] == ["AllTraffic"]  # the loser removed
    document, _ = platform.invoke_endpoint(model)
    assert document["model"]["model_version"] == candidate.model_version
