"""The shadow trial's judgement and names (mlops_dags.strategies), on plain values."""

from __future__ import annotations

from mlops_dags.strategies import VariantEvidence, judge, rejection_description, shadow_config_name, table_text

from mlops_core.pipeline_config import ShadowCriteria

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
    assert shadow_config_name(short) == f"{short}-shadow"
    long = "x" * 29 + "-v100-200-300-r12-20261205051200"
    assert len(long) <= 63 and len(shadow_config_name(long)) <= 63
    assert shadow_config_name(long) == shadow_config_name(long) != shadow_config_name(long[:-1] + "1")
