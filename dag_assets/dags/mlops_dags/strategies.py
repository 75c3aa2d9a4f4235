"""The trials of the Deployment DAG before a candidate replaces production, on live traffic:
``deployment.strategy = "shadow"`` (the candidate as the endpoint's shadow variant, judged against
criteria) and ``"ab"`` (the candidate as a weighted production variant, its share raised step by
step, the winner decided on one metric).

Why an endpoint config with ``ShadowProductionVariants`` and not a SageMaker inference experiment:
the experiment is a second resource with its own lifecycle (schedule, stop, promote calls, a role
of its own) that ends by changing the same endpoint config anyway; a shadow variant is one
``UpdateEndpoint`` there and one back, waited for like every other endpoint change, and its evidence
is the endpoint's own per-variant AWS/SageMaker metrics.

Steps (ShadowTrialOperator; every wait deferred, no worker slot held):
1. the candidate's model and a config with production's variant(s) unchanged plus the candidate as
   shadow variant (weight = production's x ``sampling_percentage`` %); UpdateEndpoint, wait;
2. bake ``bake_seconds`` (a timer in the triggerer);
3. read both variants' Invocations, 4xx/5xx errors and ModelLatency p50/p99 over the bake
   (CloudWatch GetMetricData) and, when the endpoint captures its traffic, the agreement of the
   candidate's predictions with production's on the captured pairs (mlops_dags.agreement), and
   judge them against the criteria (``judge``);
4. put production's config back (removes the shadow), wait;
5. passed: the DAG goes on with the guarded blue/green update of the candidate; failed: the package
   is marked Rejected with the evidence and the remaining deployment is skipped. A notice with the
   side-by-side table goes out either way.

An A/B test follows the same steps with the candidate as a second production variant weighted
``ab.traffic_shares[0]``, one bake per share (the weights shifted between bakes with
UpdateEndpointWeightsAndCapacities), and ``decide_ab`` instead of ``judge``; its outcome (won, lost,
inconclusive) is recorded on the package (metadata ``trial_outcome``); a lost candidate is Rejected.
With ``ab.abort_error_rate`` the bakes are timers of ``check_interval_seconds`` at most, and after each
the candidate's error rate so far is checked (``abort_ab``): a clearly failing candidate ends the test
at once, lost.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from mlops_dags.capture import data_capture_config

CANDIDATE_VARIANT = "Candidate"
PRODUCTION_CONFIG_TAG = "mlops:trial-production-config"
TRIAL_LABEL = {"shadow": "shadow trial", "ab": "A/B test"}
NAMESPACE = "AWS/SageMaker"
SAGEMAKER_NAME_MAX_LENGTH = 63


def trial_config_name(run_name: str, strategy: str) -> str:
    """The trial's endpoint config, named after the run (a retry finds it again) within 63 characters."""
    suffix = f"-{strategy}"
    name = f"{run_name}{suffix}"
    if len(name) <= SAGEMAKER_NAME_MAX_LENGTH:
        return name
    digest = hashlib.sha256(run_name.encode()).hexdigest()[:8]
    return f"{run_name[: SAGEMAKER_NAME_MAX_LENGTH - len(digest) - len(suffix) - 1].rstrip('-')}-{digest}{suffix}"


def trial_config_request(release: dict, config, production: dict) -> dict:
    """CreateEndpointConfig of the trial (``production`` is DescribeEndpointConfig of the serving
    config). Shadow: production's variant as it serves, the candidate as shadow variant weighted
    ``sampling_percentage`` % of it. A/B: production's variant and the candidate as production
    variants, the candidate weighted the first traffic share."""
    strategy = config.deployment.strategy
    [serving] = production["ProductionVariants"]  # the platform deploys one production variant
    serving = {k: v for k, v in serving.items() if k not in ("CurrentWeight", "DesiredWeight")}
    candidate = {
        "VariantName": CANDIDATE_VARIANT,
        "ModelName": release["run_name"],
        "InstanceType": config.endpoint.instance_type,
        "InitialInstanceCount": 1,
    }
    request = {"EndpointConfigName": trial_config_name(release["run_name"], strategy)}
    if strategy == "shadow":
        share = config.deployment.shadow.sampling_percentage / 100
        weight = float(serving.get("InitialVariantWeight", 1.0)) * share
        request.update(
            ProductionVariants=[serving], ShadowProductionVariants=[{**candidate, "InitialVariantWeight": weight}]
        )
    else:
        share = config.deployment.ab.traffic_shares[0]
        request["ProductionVariants"] = [
            {**serving, "InitialVariantWeight": 1 - share},
            {**candidate, "InitialVariantWeight": share},
        ]
    if config.kms_key_arn:
        request["KmsKeyId"] = config.kms_key_arn
    # The endpoint keeps capturing during the trial (production's traffic, and the shadow's answers
    # beside it), exactly as its own configs do.
    capture = data_capture_config(config)
    if capture:
        request["DataCaptureConfig"] = capture
    return request


def ab_weights(production_variant: str, share: float) -> list[dict]:
    """UpdateEndpointWeightsAndCapacities' DesiredWeightsAndCapacities for one A/B step."""
    return [
        {"VariantName": production_variant, "DesiredWeight": 1 - share},
        {"VariantName": CANDIDATE_VARIANT, "DesiredWeight": share},
    ]


@dataclass(frozen=True)
class VariantEvidence:
    variant: str
    invocations: int
    errors: int  # 4xx + 5xx answers
    latency_p50_ms: float | None
    latency_p99_ms: float | None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.invocations if self.invocations else None


_QUERIES = {
    "invocations": ("Invocations", "Sum"),
    "errors4": ("Invocation4XXErrors", "Sum"),
    "errors5": ("Invocation5XXErrors", "Sum"),
    "p50": ("ModelLatency", "p50"),
    "p99": ("ModelLatency", "p99"),
}


def variant_evidence(cloudwatch, endpoint: str, variants: list[str], start: datetime, end: datetime) -> list:
    """Each variant's AWS/SageMaker metrics over [start, end) in one GetMetricData call, with one
    period covering the whole window (a percentile is not additive over periods)."""
    start = start.replace(second=0, microsecond=0)
    period = max(60, math.ceil((end - start).total_seconds() / 60) * 60)
    queries = [
        {
            "Id": f"v{index}_{key}",
            "MetricStat": {
                "Metric": {
                    "Namespace": NAMESPACE,
                    "MetricName": metric,
                    "Dimensions": [
                        {"Name": "EndpointName", "Value": endpoint},
                        {"Name": "VariantName", "Value": variant},
                    ],
                },
                "Period": period,
                "Stat": stat,
            },
        }
        for index, variant in enumerate(variants)
        for key, (metric, stat) in _QUERIES.items()
    ]
    values: dict[str, list[float]] = {}
    for page in cloudwatch.get_paginator("get_metric_data").paginate(
        MetricDataQueries=queries, StartTime=start, EndTime=start + timedelta(seconds=period)
    ):
        for result in page["MetricDataResults"]:
            values.setdefault(result["Id"], []).extend(v for v in result["Values"] if v is not None)

    def first(key: str) -> float | None:
        found = values.get(key) or []
        return found[0] if found else None

    evidence = []
    for index, variant in enumerate(variants):
        total = {key: sum(values.get(f"v{index}_{key}", [])) for key in ("invocations", "errors4", "errors5")}
        p50, p99 = first(f"v{index}_p50"), first(f"v{index}_p99")
        evidence.append(
            VariantEvidence(
                variant=variant,
                invocations=int(total["invocations"]),
                errors=int(total["errors4"] + total["errors5"]),
                latency_p50_ms=None if p50 is None else p50 / 1000,
                latency_p99_ms=None if p99 is None else p99 / 1000,
            )
        )
    return evidence


@dataclass(frozen=True)
class Verdict:
    outcome: str  # "promoted" | "rejected" | "inconclusive" (A/B without enough evidence)
    reasons: list[str]
    table: list[list[str]]  # header row, then metric rows: metric, production, candidate, criterion, holds

    @property
    def promote(self) -> bool:
        return self.outcome == "promoted"

    def as_dict(self) -> dict:
        return asdict(self)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.2f} %"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} ms"


def _agreement_check(agreement, criteria, enough: bool) -> tuple[str, tuple[str, str] | None, str | None]:
    """(the table's agreement cell, (criterion, holds) or None when not judged, the reason it fails)."""
    rate = agreement.rate if agreement is not None else None
    shown = "n/a" if rate is None else f"{rate * 100:.2f} % of {agreement.records}"
    if criteria.min_agreement is None:
        return shown, None, None
    holds = enough and rate is not None and rate >= criteria.min_agreement - 1e-12
    reason = None
    if enough and rate is None:
        reason = "no captured pair of production's and the candidate's answers to compare predictions on"
    elif enough and not holds:
        reason = (
            f"the candidate's predictions agree with production's on {_pct(rate)} of {agreement.records} "
            f"records, fewer than the {_pct(criteria.min_agreement)} required"
        )
    return shown, (f">= {_pct(criteria.min_agreement)}", "yes" if holds else "no"), reason


def judge(production: VariantEvidence, candidate: VariantEvidence, criteria, agreement=None) -> Verdict:
    """Whether the candidate may replace production, with the side-by-side table it is based on.
    ``agreement`` (mlops_dags.agreement.Agreement) is the captured pairs' prediction agreement, None
    when the endpoint does not capture."""
    reasons = []
    enough = candidate.invocations >= criteria.min_invocations
    if not enough:
        reasons.append(
            f"the candidate answered {candidate.invocations} requests, fewer than the {criteria.min_invocations} "
            "the trial needs"
        )
    increase = (candidate.error_rate or 0.0) - (production.error_rate or 0.0)
    errors_hold = enough and increase <= criteria.max_error_rate_increase + 1e-12
    if enough and not errors_hold:
        reasons.append(
            f"error rate {_pct(candidate.error_rate)} vs {_pct(production.error_rate)}: +{increase * 100:.2f} points, "
            f"more than the {criteria.max_error_rate_increase * 100:.2f} allowed"
        )
    limit = (
        None
        if production.latency_p99_ms is None
        else production.latency_p99_ms * (1 + criteria.max_p99_latency_increase)
    )
    latency_holds = enough and (limit is None or (candidate.latency_p99_ms or 0.0) <= limit)
    if enough and not latency_holds:
        reasons.append(
            f"p99 model latency {_ms(candidate.latency_p99_ms)} vs {_ms(production.latency_p99_ms)}: above the "
            f"{_ms(limit)} allowed (+{criteria.max_p99_latency_increase * 100:.0f} %)"
        )
    agreement_cell, agreement_criterion, agreement_reason = _agreement_check(agreement, criteria, enough)
    if agreement_reason:
        reasons.append(agreement_reason)
    agreement_holds = agreement_criterion is None or agreement_criterion[1] == "yes"
    judged = {
        "invocations": (f">= {criteria.min_invocations}", "yes" if enough else "no"),
        "error rate": (
            f"<= production + {criteria.max_error_rate_increase * 100:.2f} points",
            "yes" if errors_hold else "no",
        ),
        "p99 model latency": (f"<= {_ms(limit)}", "yes" if latency_holds else "no"),
    }
    if agreement_criterion:
        judged[AGREEMENT_ROW] = agreement_criterion
    shown_agreement = agreement_cell if agreement is not None or agreement_criterion else None
    table = side_by_side(production, candidate, judged, agreement=shown_agreement)
    promote = enough and errors_hold and latency_holds and agreement_holds
    return Verdict("promoted" if promote else "rejected", reasons, table)


AGREEMENT_ROW = "prediction agreement"


def side_by_side(
    production: VariantEvidence,
    candidate: VariantEvidence,
    criteria: dict[str, tuple[str, str]],
    agreement: str | None = None,
) -> list[list[str]]:
    """The notice's table: each metric of both variants, with the criterion and whether it holds
    for the metrics ``criteria`` names (label -> (criterion, holds)); with ``agreement``, the
    candidate's prediction agreement with production (the reference) as the last row."""
    rows = [
        ("invocations", str(production.invocations), str(candidate.invocations)),
        ("error rate", _pct(production.error_rate), _pct(candidate.error_rate)),
        ("p50 model latency", _ms(production.latency_p50_ms), _ms(candidate.latency_p50_ms)),
        ("p99 model latency", _ms(production.latency_p99_ms), _ms(candidate.latency_p99_ms)),
    ]
    if agreement is not None:
        rows.append((AGREEMENT_ROW, "reference", agreement))
    header = ["metric", "production", "candidate", "criterion", "holds"]
    return [header] + [[*row, *criteria.get(row[0], ("", ""))] for row in rows]


def decide_ab(production: VariantEvidence, candidate: VariantEvidence, criteria) -> Verdict:
    """The A/B test's winner on ``criteria.decision_metric`` (lower is better; the candidate wins a
    tie), once both variants answered ``min_invocations`` requests; else inconclusive."""
    metric = criteria.decision_metric
    value = {"error_rate": lambda e: e.error_rate or 0.0, "latency_p99": lambda e: e.latency_p99_ms or 0.0}[metric]
    show = _pct if metric == "error_rate" else _ms
    enough = min(production.invocations, candidate.invocations) >= criteria.min_invocations
    wins = enough and value(candidate) <= value(production)
    if not enough:
        reasons = [
            f"{production.invocations} and {candidate.invocations} requests answered: each variant needs "
            f"{criteria.min_invocations} to decide"
        ]
    else:
        relation = "not above" if wins else "above"
        reasons = [f"{metric} {show(value(candidate))} {relation} production's {show(value(production))}"]
    label = {"error_rate": "error rate", "latency_p99": "p99 model latency"}[metric]
    table = side_by_side(
        production,
        candidate,
        {
            "invocations": (f">= {criteria.min_invocations} each", "yes" if enough else "no"),
            label: ("<= production (decides)", ("yes" if wins else "no") if enough else "n/a"),
        },
    )
    return Verdict("promoted" if wins else "rejected" if enough else "inconclusive", reasons, table)


def abort_ab(production: VariantEvidence, candidate: VariantEvidence, criteria) -> Verdict | None:
    """The A/B test's early end while it bakes: a rejected verdict once the candidate answered
    ``abort_min_invocations`` requests with an error rate of at least ``abort_error_rate``, else None."""
    threshold = criteria.abort_error_rate
    if threshold is None or candidate.invocations < criteria.abort_min_invocations:
        return None
    if (candidate.error_rate or 0.0) + 1e-12 < threshold:
        return None
    reasons = [
        f"aborted early: the candidate's error rate {_pct(candidate.error_rate)} over {candidate.invocations} "
        f"requests reached the {_pct(threshold)} abort threshold"
    ]
    table = side_by_side(
        production,
        candidate,
        {
            "invocations": (f">= {criteria.abort_min_invocations} (abort check)", "yes"),
            "error rate": (f"< {_pct(threshold)} (abort)", "no"),
        },
    )
    return Verdict("rejected", reasons, table)


def table_text(table: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in table
    )


_OUTCOME_WORDS = {
    ("shadow", "promoted"): ("passed", "promoting it (blue/green)"),
    ("shadow", "rejected"): ("failed", "rejected, production unchanged"),
    ("ab", "promoted"): ("won", "promoting it (blue/green)"),
    ("ab", "rejected"): ("lost", "rejected, production unchanged"),
    ("ab", "inconclusive"): ("inconclusive", "production unchanged, the candidate stays registered"),
}


def trial_notice(
    *, environment: str, release: dict, verdict: dict, strategy: str, seconds: float, production_config: str
):
    """The notice of a finished trial: the outcome, why, and the side-by-side table."""
    from mlops_dags.messages import Notification, _header, _section

    project, model, version = release["project"], release["model"], release["model_version"]
    word, consequence = _OUTCOME_WORDS[(strategy, verdict["outcome"])]
    label = TRIAL_LABEL[strategy]
    role = "a shadow of" if strategy == "shadow" else "an A/B test against"
    subject = f"[mlops-{environment}] {label[0].upper()}{label[1:]} of {project}/{model} {version} {word}"
    outcome = f"{word}: {consequence}"
    table = table_text(verdict["table"])
    lines = [
        f"{project}/{model} {version} ran as {role} {production_config} on endpoint {release['endpoint_name']} "
        f"for {seconds:.0f} s: {outcome}.",
        *(f"- {reason}" for reason in verdict["reasons"]),
        "",
        table,
    ]
    blocks = [
        _header(f"{'✅' if verdict['outcome'] == 'promoted' else '🛑'} {subject.split('] ', 1)[1]}"),
        _section("\n".join(lines[:-1]).strip() or outcome),
        _section(f"```\n{table}\n```"),
    ]
    return Notification(subject=subject, text="\n".join(lines), blocks=blocks)


def _why(verdict: dict) -> str:
    rows = "; ".join(f"{row[0]} {row[1]} -> {row[2]}" for row in verdict["table"][1:])
    return f"{' / '.join(verdict['reasons'])}. Evidence: {rows}"


def outcome_record(verdict: dict, strategy: str) -> str:
    """What the registry keeps of a trial (a metadata value, at most 1024 characters)."""
    return f"{verdict['outcome']}: {_why(verdict)}"[:1024]


def rejection_description(verdict: dict, strategy: str = "shadow") -> str:
    """UpdateModelPackage's ApprovalDescription of a rejected candidate (at most 1024 characters)."""
    return f"Rejected by its {TRIAL_LABEL[strategy]}: {_why(verdict)}"[:1024]
