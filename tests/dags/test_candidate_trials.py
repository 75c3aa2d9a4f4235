"""The Deployment DAG with deployment.strategy "shadow" and "ab", run for real (dag.test()) against
the local AWS while requests arrive: the candidate runs beside production as a shadow variant, or as
a weighted production variant whose share rises step by step, then is promoted (the usual
blue/green update) or rejected on the per-variant CloudWatch metrics."""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager

import pytest
from harness import PROJECT, deploy, new_model, train

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SHADOW = {"strategy": "shadow", "bake_seconds": 4, "shadow": {"min_invocations": 20, "max_error_rate_increase": 0.01}}


@contextmanager
def live_traffic(env, endpoint_name: str, *, all_answered: bool = True):
    """Requests to the endpoint every few milliseconds while the block runs, as clients would send."""
    runtime = env["boto"].client("sagemaker-runtime")
    stop = threading.Event()
    refused: list[Exception] = []

    def send() -> None:
        while not stop.is_set():
            try:
                runtime.invoke_endpoint(EndpointName=endpoint_name, Body=b"120,13\n", ContentType="text/csv")
            except runtime.exceptions.ClientError as error:  # production answers every request
                refused.append(error)
            stop.wait(0.01)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)
    if all_answered:
        assert not refused, refused[:3]  # whatever the shadow does, production answers every request


def run_names(m) -> dict[str, str]:
    return {
        p["CustomerMetadataProperties"]["model_version"]: p["CustomerMetadataProperties"]["run_name"]
        for p in m.packages()
    }


def test_a_candidate_as_good_as_production_is_promoted_after_its_shadow_trial(env):
    """Both variants answer alike (the scenario's canned answer): every captured pair agrees."""
    agreeing = {**SHADOW, "shadow": {**SHADOW["shadow"], "min_agreement": 0.99}}
    m = new_model(env, "shadow-ok", deployment=agreeing)
    assert train(env, m, tag="1.0.0").state == "success"
    first = deploy(env, m, "1.0.0+r0")  # nothing serves yet: a first deployment has nothing to compare with
    assert first.state == "success" and first.tasks["candidate_trial"] == "success", first.tasks
    assert train(env, m, tag="1.0.0", retraining=True).state == "success"
    m.sns_messages()

    with live_traffic(env, m.config.endpoint_name):
        second = deploy(env, m, "1.0.0+r1")
    assert second.state == "success", second.tasks
    assert second.tasks["candidate_trial"] == "success" and second.tasks["deploy_endpoint"] == "success"
    runs = run_names(m)
    assert m.serving() == ("InService", runs["1.0.0+r1"])
    described = env["boto"].client("sagemaker").describe_endpoint(EndpointName=m.config.endpoint_name)
    assert "ShadowProductionVariants" not in described  # the shadow left before the promotion
    trial = second.returned("candidate_trial")
    assert trial["promoted"] is True and trial["table"][0] == [
        "metric",
        "production",
        "candidate",
        "criterion",
        "holds",
    ]
    # Prediction agreement from the pairs data capture recorded during the bake (read by the MWAA role).
    agreement = trial["table"][-1]
    assert agreement[:2] == ["prediction agreement", "reference"] and agreement[3:] == [">= 99.00 %", "yes"]
    assert agreement[2].startswith("100.00 % of ") and int(agreement[2].rsplit(" ", 1)[1]) > 0

    notes = m.sns_messages()
    [passed] = [n for n in notes if "Shadow trial" in n["subject"]]
    assert passed["subject"] == f"[mlops-itest] Shadow trial of {PROJECT}/{m.model} 1.0.0+r1 passed"
    assert "error rate" in passed["message"] and "p99 model latency" in passed["message"]
    assert any("Deployed" in n["subject"] for n in notes)


def serving_with_a_worse_candidate(env, model: str, deployment: dict):
    """Model ``model`` serving 1.0.0+r0, with 1.1.0+r0 trained: an image that answers every request
    with a 500 (deliberately worse; production stays healthy). Earlier notices are read away."""
    m = new_model(env, model, deployment=deployment)
    assert train(env, m, tag="1.0.0").state == "success"
    assert deploy(env, m, "1.0.0+r0").state == "success"
    assert train(env, m, tag="1.1.0").state == "success"
    m.sns_messages()
    env["aws"].update_scenario(
        {"endpoints": {"rules": [{"when": {"image_contains": f"{m.model}:1.1.0"}, "invoke": {"status": 500}}]}}
    )
    return m


def test_a_worse_candidate_is_rejected_with_the_evidence_and_production_keeps_serving(env):
    m = serving_with_a_worse_candidate(env, "shadow-bad", SHADOW)

    with live_traffic(env, m.config.endpoint_name):
        result = deploy(env, m, "1.1.0+r0")
    assert result.state == "success", result.tasks  # the DAG did its job: the candidate was judged
    assert result.tasks["candidate_trial"] == "skipped"
    assert result.tasks["approve_package"] == "skipped" and result.tasks["deploy_endpoint"] == "skipped"
    runs = run_names(m)
    assert m.serving() == ("InService", runs["1.0.0+r0"])
    described = env["boto"].client("sagemaker").describe_endpoint(EndpointName=m.config.endpoint_name)
    assert "ShadowProductionVariants" not in described

    [candidate] = [p for p in m.packages() if p["CustomerMetadataProperties"]["model_version"] == "1.1.0+r0"]
    assert candidate["ModelApprovalStatus"] == "Rejected"
    assert candidate["ApprovalDescription"].startswith("Rejected by its shadow trial: error rate")
    [rejected] = [n for n in m.sns_messages() if "Shadow trial" in n["subject"]]
    assert rejected["subject"] == f"[mlops-itest] Shadow trial of {PROJECT}/{m.model} 1.1.0+r0 failed"
    table = rejected["message"].split("\n\n", 1)[1].splitlines()
    assert table[0].split() == ["metric", "production", "candidate", "criterion", "holds"]
    error_row = next(line for line in table if line.startswith("error rate"))
    assert "0.00 %" in error_row and "100.00 %" in error_row and error_row.endswith("no")
    # A rejected candidate cannot be deployed afterwards either (the Deployment DAG refuses it).
    again = deploy(env, m, "1.1.0+r0")
    assert again.state == "failed" and again.tasks["resolve_package"] == "failed"


AB = {
    "strategy": "ab",
    "bake_seconds": 3,
    "ab": {"traffic_shares": [0.2, 0.5], "min_invocations": 10, "decision_metric": "error_rate"},
}


def weight_shifts(env, endpoint_name: str) -> list[dict]:
    return [
        e
        for e in env["aws"].events()
        if e["kind"] == "Endpoint" and e["name"] == endpoint_name and e["detail"] == "weights and capacities"
    ]


def test_an_ab_test_shifts_traffic_step_by_step_and_the_winner_takes_it_all(env):
    m = new_model(env, "ab-win", deployment=AB)
    assert train(env, m, tag="1.0.0").state == "success"
    assert deploy(env, m, "1.0.0+r0").state == "success"
    assert train(env, m, tag="1.0.0", retraining=True).state == "success"
    m.sns_messages()

    with live_traffic(env, m.config.endpoint_name):
        result = deploy(env, m, "1.0.0+r1")
    assert result.state == "success", result.tasks
    assert result.tasks["candidate_trial"] == "success" and result.tasks["deploy_endpoint"] == "success"
    runs = run_names(m)
    assert m.serving() == ("InService", runs["1.0.0+r1"])  # the winner serves alone
    # One shift of the weights (0.2 -> 0.5), then the conclusion.
    assert [e["status"] for e in weight_shifts(env, m.config.endpoint_name)] == ["Updating", "InService"]
    [winner] = [p for p in m.packages() if p["CustomerMetadataProperties"]["model_version"] == "1.0.0+r1"]
    assert winner["ModelApprovalStatus"] == "Approved"
    assert winner["CustomerMetadataProperties"]["trial_outcome"].startswith("promoted: error_rate 0.00 % not above")
    notes = m.sns_messages()
    found = [n for n in notes if "A/B test" in n["subject"]]
    assert len(found) == 1, [n["subject"] for n in notes]
    won = found[0]
    assert won["subject"] == f"[mlops-itest] A/B test of {PROJECT}/{m.model} 1.0.0+r1 won"


def test_an_ab_test_whose_candidate_clearly_fails_is_aborted_early_and_production_keeps_serving(env):
    """Bakes of 60 s, checked every second (MLOPS_CHECK_INTERVAL_SECONDS): the candidate answering only
    500s ends the test after its first few requests instead of after two bakes."""
    aborting = {**AB, "bake_seconds": 60, "ab": {**AB["ab"], "abort_error_rate": 0.5, "abort_min_invocations": 5}}
    m = serving_with_a_worse_candidate(env, "ab-lose", aborting)

    with live_traffic(env, m.config.endpoint_name, all_answered=False):  # the candidate's share sees its 500s
        started = time.monotonic()
        result = deploy(env, m, "1.1.0+r0")
        seconds = time.monotonic() - started
    assert result.state == "success" and result.tasks["candidate_trial"] == "skipped", result.tasks
    assert seconds < 60, seconds  # well before the first bake would have ended
    assert weight_shifts(env, m.config.endpoint_name) == []  # never reached the second share
    runs = run_names(m)
    assert m.serving() == ("InService", runs["1.0.0+r0"])
    [loser] = [p for p in m.packages() if p["CustomerMetadataProperties"]["model_version"] == "1.1.0+r0"]
    assert loser["ModelApprovalStatus"] == "Rejected"
    assert loser["ApprovalDescription"].startswith(
        "Rejected by its A/B test: aborted early: the candidate's error rate 100.00 % over"
    )
    assert loser["CustomerMetadataProperties"]["trial_outcome"].startswith("rejected:")
    [lost] = [n for n in m.sns_messages() if "A/B test" in n["subject"]]
    assert lost["subject"] == f"[mlops-itest] A/B test of {PROJECT}/{m.model} 1.1.0+r0 lost"


def test_the_agreement_reads_only_the_capture_files_of_the_bake_window(env):
    """Capture files are named after their first record's time under hour folders (developer guide
    "Capture data from real-time endpoint"); the comparison lists the hours of the window and reads the
    files begun within it (or up to CAPTURE_BATCH_SLACK before), then keeps the records in it."""
    from datetime import UTC, datetime, timedelta

    from mlops_dags.agreement import CAPTURE_BATCH_SLACK, capture_objects, read_records

    s3 = env["boto"].client("s3")
    bucket = "agreement-window"
    s3.create_bucket(Bucket=bucket)
    start = datetime(2026, 12, 5, 9, 58, 30, tzinfo=UTC)
    end = start + timedelta(minutes=4)  # into the next hour
    folder = "capture/ep/Candidate"

    def put(begun: datetime, *inference_times: datetime) -> str:
        key = f"{folder}/{begun:%Y/%m/%d/%H}/{begun:%M-%S}-000-x.jsonl"
        lines = [json.dumps({"eventMetadata": {"inferenceTime": f"{t:%Y-%m-%dT%H:%M:%SZ}"}}) for t in inference_times]
        s3.put_object(Bucket=bucket, Key=key, Body="\n".join(lines).encode())
        return key

    early = put(start - CAPTURE_BATCH_SLACK - timedelta(seconds=1), start - timedelta(minutes=6))
    straddling = put(start - timedelta(minutes=1), start - timedelta(seconds=30), start + timedelta(seconds=5))
    inside = put(start + timedelta(minutes=2), start + timedelta(minutes=2))
    next_hour = put(end - timedelta(seconds=10), end - timedelta(seconds=10))
    put(end + timedelta(seconds=1), end + timedelta(seconds=1))
    found = capture_objects(s3, f"s3://{bucket}/capture", "ep", "Candidate", start, end)
    assert sorted(key for _, key in found) == sorted([straddling, inside, next_hour]) and early not in found
    kept = [r["eventMetadata"]["inferenceTime"] for r in read_records(s3, found, start, end)]
    assert sorted(kept) == ["2026-12-05T09:58:35Z", "2026-12-05T10:00:30Z", "2026-12-05T10:02:20Z"]
