"""The trials' judgements, configs and names (mlops_dags.strategies), on plain values."""

from __future__ import annotations

from mlops_dags.strategies import (
    VariantEvidence,
    abort_ab,
    decide_ab,
    judge,
    rejection_description,
    table_text,
    trial_config_name,
    trial_config_request,
)

from mlops_core.pipeline_config import ABCriteria, DataCapture, DeploymentSettings, ShadowCriteria

CRITERIA = ShadowCriteria(min_invocations=100, max_error_rate_increase=0.01, max_p99_latency_increase=0.2)
PRODUCTION = VariantEvidence("AllTraffic", invocations=1000, errors=5, latency_p50_ms=8.0, latency_p99_ms=20.0)


def candidate(**changes) -> VariantEvidence:
    values = {"variant": "Candidate", "invocations": 1000, "errors": 5, "latency_p50_ms": 8.0, "latency_p99_ms": 20.0}
    return VariantEvidence(**{**values, **changes})


def test_a_candidate_within_every_criterion_is_promoted():
    verdict = judge(PRODUCTION, candidate(errors=14, latency_p99_ms=24.0), CRITERIA)  # +0.9 points, +20 %
    assert verdict.promote and verdict.reasons == []
    assert [row[-1] for row in verdict.table[1:]] == ["yes", "yes", "", "yes"]


def test_each_criterion_alone_rejects():
    slow = judge(PRODUCTION, candidate(latency_p99_ms=24.1), CRITERIA)
    assert not slow.promote and "p99 model latency 24.1 ms vs 20.0 ms" in slow.reasons[0]
    failing = judge(PRODUCTION, candidate(errors=16), CRITERIA)
    assert not failing.promote and failing.reasons[0].startswith("error rate 1.60 % vs 0.50 %")
    unseen = judge(PRODUCTION, candidate(invocations=99, errors=0), CRITERIA)
    assert not unseen.promote and "fewer than the 100" in unseen.reasons[0]


def test_the_table_and_the_registry_description_carry_the_evidence():
    verdict = judge(PRODUCTION, candidate(errors=500), CRITERIA).as_dict()
    lines = table_text(verdict["table"]).splitlines()
    assert lines[0].split() == ["metric", "production", "candidate", "criterion", "holds"]
    assert lines[2].startswith("error rate") and "50.00 %" in lines[2] and lines[2].endswith("no")
    description = rejection_description(verdict)
    assert description.startswith("Rejected by its shadow trial: error rate 50.00 %") and len(description) <= 1024


def test_the_trial_config_name_keeps_within_sagemaker_limits_and_is_stable():
    short = "itest-m-v1-0-0-r1-20261205051200"
    assert trial_config_name(short, "shadow") == f"{short}-shadow"
    long = "x" * 29 + "-v100-200-300-r12-20261205051200"
    assert len(long) <= 63 and len(trial_config_name(long, "ab")) <= 63
    assert trial_config_name(long, "ab") == trial_config_name(long, "ab") != trial_config_name(long[:-1] + "1", "ab")


AB = ABCriteria(traffic_shares=(0.1, 0.5), min_invocations=100, decision_metric="error_rate")


def test_an_ab_test_is_won_by_the_lower_decision_metric_the_candidate_winning_a_tie():
    assert decide_ab(PRODUCTION, candidate(errors=5), AB).outcome == "promoted"  # 0.5 % each: a tie
    lost = decide_ab(PRODUCTION, candidate(errors=6), AB)
    assert lost.outcome == "rejected" and lost.reasons == ["error_rate 0.60 % above production's 0.50 %"]
    assert [row[4] for row in lost.table if row[0] == "error rate"] == ["no"]
    faster = ABCriteria(min_invocations=100, decision_metric="latency_p99")
    assert decide_ab(PRODUCTION, candidate(errors=500, latency_p99_ms=19.0), faster).outcome == "promoted"


def test_an_ab_test_is_aborted_early_only_when_the_candidate_clearly_fails_with_enough_requests():
    aborting = ABCriteria(min_invocations=100, abort_error_rate=0.5, abort_min_invocations=20)
    verdict = abort_ab(PRODUCTION, candidate(invocations=20, errors=10), aborting)
    assert verdict.outcome == "rejected" and verdict.reasons == [
        "aborted early: the candidate's error rate 50.00 % over 20 requests reached the 50.00 % abort threshold"
    ]
    assert [row[3:] for row in verdict.table if row[0] == "error rate"] == [["< 50.00 % (abort)", "no"]]
    assert abort_ab(PRODUCTION, candidate(invocations=19, errors=19), aborting) is None  # too few requests yet
    assert abort_ab(PRODUCTION, candidate(invocations=20, errors=9), aborting) is None
    assert abort_ab(PRODUCTION, candidate(invocations=1000, errors=1000), AB) is None  # no abort configured


def test_an_ab_test_without_enough_requests_on_either_side_is_inconclusive():
    verdict = decide_ab(PRODUCTION, candidate(invocations=99), AB)
    assert verdict.outcome == "inconclusive" and not verdict.promote
    assert "each variant needs 100 to decide" in verdict.reasons[0]


def test_the_trial_configs_keep_production_as_it_serves_and_weigh_the_candidate():
    from types import SimpleNamespace

    serving = {"VariantName": "AllTraffic", "ModelName": "prod", "InstanceType": "ml.m5.large", "CurrentWeight": 1.0}
    release = {"run_name": "itest-m-v1-1-0-r0-20261205051200"}

    def config(**deployment):
        return SimpleNamespace(
            deployment=DeploymentSettings(**deployment),
            endpoint=SimpleNamespace(instance_type="ml.c5.large"),
            kms_key_arn="arn:aws:kms:eu-west-1:1:key/k",
            data_capture=DataCapture(sampling_percentage=50),
            data_capture_uri="s3://artifacts/itest/m/data-capture",
        )

    shadow = trial_config_request(
        release, config(strategy="shadow", shadow={"sampling_percentage": 25}), {"ProductionVariants": [serving]}
    )
    assert shadow["ProductionVariants"] == [
        {"VariantName": "AllTraffic", "ModelName": "prod", "InstanceType": "ml.m5.large"}
    ]
    [copy] = shadow["ShadowProductionVariants"]
    assert (copy["ModelName"], copy["InitialVariantWeight"]) == (release["run_name"], 0.25)
    assert shadow["KmsKeyId"] == "arn:aws:kms:eu-west-1:1:key/k"
    ab = trial_config_request(
        release, config(strategy="ab", ab={"traffic_shares": [0.2, 0.6]}), {"ProductionVariants": [serving]}
    )
    assert [(v["VariantName"], v["InitialVariantWeight"]) for v in ab["ProductionVariants"]] == [
        ("AllTraffic", 0.8),
        ("Candidate", 0.2),
    ]
    assert "ShadowProductionVariants" not in ab and ab["EndpointConfigName"].endswith("-ab")
    # Capture goes on through the trial, as configured for the model.
    for trial in (shadow, ab):
        capture = trial["DataCaptureConfig"]
        assert (capture["InitialSamplingPercentage"], capture["DestinationS3Uri"]) == (
            50,
            "s3://artifacts/itest/m/data-capture",
        )
