"""The shadow trial of the Deployment DAG (``deployment.strategy = "shadow"``): the candidate runs
beside production as the endpoint's shadow variant, then is judged on the live traffic it saw.

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
   (CloudWatch GetMetricData) and judge them against the criteria (``judge``);
4. put production's config back (removes the shadow), wait;
5. passed: the DAG goes on with the guarded blue/green update of the candidate; failed: the package
   is marked Rejected with the evidence and the remaining deployment is skipped. A notice with the
   side-by-side table goes out either way.

Prediction agreement is not among the criteria yet: it needs the shadow's captured answers (data
capture), which this module does not read.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

SHADOW_VARIANT = "Candidate"
PRODUCTION_CONFIG_TAG = "mlops:shadow-trial-production"
NAMESPACE = "AWS/SageMaker"
SAGEMAKER_NAME_MAX_LENGTH = 63


def shadow_config_name(run_name: str) -> str:
    """The trial's endpoint config, named after the run (a retry finds it again) within 63 characters."""
    name = f"{run_name}-shadow"
    if len(name) <= SAGEMAKER_NAME_MAX_LENGTH:
        return name
    digest = hashlib.sha256(run_name.encode()).hexdigest()[:8]
    return f"{run_name[: SAGEMAKER_NAME_MAX_LENGTH - len(digest) - 8].rstrip('-')}-{digest}-shadow"


def shadow_config_request(release: dict, config, production: dict) -> dict:
    """CreateEndpointConfig of the trial: production's variants as they serve (``production`` is
    DescribeEndpointConfig of the serving config) and the candidate as shadow variant."""
    variants = [
        {k: v for k, v in variant.items() if k not in ("CurrentWeight", "DesiredWeight")}
        for variant in production["ProductionVariants"]
    ]
    weight = float(variants[0].get("InitialVariantWeight", 1.0)) * config.deployment.shadow.sampling_percentage / 100
    request = {
        "EndpointConfigName": shadow_config_name(release["run_name"]),
        "ProductionVariants": variants,
        "ShadowProductionVariants": [
            {
                "VariantName": SHADOW_VARIANT,
                "ModelName": release["run_name"],
                "InstanceType": config.endpoint.instance_type,
                "InitialInstanceCount": 1,
                "InitialVariantWeight": weight,
            }
        ],
    }
    if config.kms_key_arn:
        request["KmsKeyId"] = config.kms_key_arn
    return request


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
    promote: bool
    reasons: list[str]
    table: list[list[str]]  # header row, then metric rows: metric, production, candidate, criterion, holds

    def as_dict(self) -> dict:
        return asdict(self)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.2f} %"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} ms"


def judge(production: VariantEvidence, candidate: VariantEvidence, criteria) -> Verdict:
    """Whether the candidate may replace production, with the side-by-side table it is based on."""
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
    table = [
        ["metric", "production", "candidate", "criterion", "holds"],
        [
            "invocations",
            str(production.invocations),
            str(candidate.invocations),
            f">= {criteria.min_invocations}",
            "yes" if enough else "no",
        ],
        [
            "error rate",
            _pct(production.error_rate),
            _pct(candidate.error_rate),
            f"<= production + {criteria.max_error_rate_increase * 100:.2f} points",
            "yes" if errors_hold else "no",
        ],
        ["p50 model latency", _ms(production.latency_p50_ms), _ms(candidate.latency_p50_ms), "", ""],
        [
            "p99 model latency",
            _ms(production.latency_p99_ms),
            _ms(candidate.latency_p99_ms),
            f"<= {_ms(limit)}",
            "yes" if latency_holds else "no",
        ],
    ]
    return Verdict(promote=enough and errors_hold and latency_holds, reasons=reasons, table=table)


def table_text(table: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in table
    )


def trial_notice(*, environment: str, release: dict, verdict: dict, bake_seconds: int, production_config: str):
    """The notice of a finished trial: the outcome, why, and the side-by-side table."""
    from mlops_dags.messages import Notification, _header, _section

    project, model, version = release["project"], release["model"], release["model_version"]
    outcome = "passed: promoting it (blue/green)" if verdict["promote"] else "failed: rejected, production unchanged"
    word = outcome.split(":")[0]
    subject = f"[mlops-{environment}] Shadow trial of {project}/{model} {version} {word}"
    table = table_text(verdict["table"])
    lines = [
        f"{project}/{model} {version} ran as a shadow of {production_config} on endpoint {release['endpoint_name']} "
        f"for {bake_seconds} s: {outcome}.",
        *(f"- {reason}" for reason in verdict["reasons"]),
        "",
        table,
    ]
    blocks = [
        _header(f"{'✅' if verdict['promote'] else '🛑'} Shadow trial of {project}/{model} {version} {word}"),
        _section("\n".join(lines[:-1]).strip() or outcome),
        _section(f"```\n{table}\n```"),
    ]
    return Notification(subject=subject, text="\n".join(lines), blocks=blocks)


def rejection_description(verdict: dict) -> str:
    """UpdateModelPackage's ApprovalDescription (at most 1024 characters): why, and the evidence."""
    rows = "; ".join(f"{row[0]} {row[1]} -> {row[2]}" for row in verdict["table"][1:])
    return f"Rejected by its shadow trial: {' / '.join(verdict['reasons'])}. Evidence: {rows}"[:1024]
