"""Production and shadow variants of an endpoint: what CreateEndpointConfig refuses, how the runtime
routes a request, and UpdateEndpointWeightsAndCapacities' checks.

SageMaker's documented rules encoded here (API reference: CreateEndpointConfig, ProductionVariant,
InvokeEndpoint, UpdateEndpointWeightsAndCapacities; developer guide "Testing models with shadow
variants"):
- ``ProductionVariants`` holds 1 to 10 variants, ``ShadowProductionVariants`` 1 to 10; with shadow
  variants there may be exactly one production variant and one shadow variant;
- variant names are unique within a config; ``InitialVariantWeight`` defaults to 1.0 and is >= 0;
- a request goes to a production variant with probability weight / sum of production weights, or to
  the variant named by ``TargetVariant`` (which must exist: the runtime answers ValidationError);
- a shadow variant receives a copy of the production variant's requests, sampled by the ratio of its
  weight to the production variant's (weights 1.0 and 1.0, the guide's example: every request); its
  response is never returned to the caller.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from local_aws.sagemaker.runners import Deployment
from local_aws.scenario import rule_matches
from local_aws.wire import AwsError

MAX_VARIANTS = 10
PRODUCTION = "ProductionVariants"
SHADOW = "ShadowProductionVariants"
TARGET_VARIANT_HEADER = "x-amzn-sagemaker-target-variant"
# Copies to shadow variants that may wait at once; beyond that a copy is dropped (and counted) rather
# than queued without bound: the shadow must never slow production down or exhaust memory.
SHADOW_QUEUE_LIMIT = 1000


def described_variants(endpoint: dict[str, Any]) -> list[dict[str, Any]]:
    """The production then shadow variants of a DescribeEndpoint record."""
    return [*(endpoint.get(PRODUCTION) or []), *(endpoint.get(SHADOW) or [])]


def weight(variant: dict[str, Any]) -> float:
    return float(variant.get("InitialVariantWeight", 1.0))


def validate_config(p: dict[str, Any]) -> None:
    """Refuse an endpoint config SageMaker's CreateEndpointConfig refuses (botocore checks only the
    minimum list lengths client-side)."""
    production, shadows = p.get(PRODUCTION) or [], p.get(SHADOW) or []
    for key, variants in ((PRODUCTION, production), (SHADOW, shadows)):
        if len(variants) > MAX_VARIANTS:
            raise AwsError(
                "ValidationException",
                f"1 validation error detected: Value at '{key[0].lower() + key[1:]}' failed to satisfy "
                f"constraint: Member must have length less than or equal to {MAX_VARIANTS}",
            )
    if shadows and (len(production) != 1 or len(shadows) != 1):
        raise AwsError(
            "ValidationException",
            "An endpoint configuration with ShadowProductionVariants must have exactly one "
            "ProductionVariant and one ShadowProductionVariant.",
        )
    names = [v["VariantName"] for v in [*production, *shadows]]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise AwsError("ValidationException", f"Variant names must be unique; duplicated: {', '.join(duplicates)}.")
    if not any(weight(v) > 0 for v in production):
        raise AwsError("ValidationException", "At least one production variant must have a weight greater than 0.")


@dataclass
class ServingVariant:
    name: str
    deployment: Deployment
    weight: float
    image: str = ""


@dataclass
class Fleet:
    """The variants an endpoint serves with, and the weights the runtime routes by."""

    production: list[ServingVariant]
    shadows: list[ServingVariant] = field(default_factory=list)

    def deployments(self) -> list[Deployment]:
        return [v.deployment for v in [*self.production, *self.shadows]]

    def variant(self, name: str) -> ServingVariant | None:
        return next((v for v in [*self.production, *self.shadows] if v.name == name), None)

    def pick(self, target: str | None, draw: Callable[[], float] = random.random) -> ServingVariant:
        """The production variant that answers: the targeted one, else one drawn by weight."""
        if target:
            chosen = next((v for v in self.production if v.name == target), None)
            if chosen is None:
                # InvokeEndpoint documents ValidationError (400) for a request it cannot serve.
                raise AwsError("ValidationError", f"The variant {target} is not a production variant of this endpoint.")
            return chosen
        total = sum(v.weight for v in self.production)
        point = draw() * total
        for variant in self.production:
            point -= variant.weight
            if point < 0 and variant.weight > 0:
                return variant
        return next(v for v in reversed(self.production) if v.weight > 0)

    def sampled_shadows(
        self, answered: ServingVariant, draw: Callable[[], float] = random.random
    ) -> list[ServingVariant]:
        if not self.shadows or answered.weight <= 0:
            return []
        return [s for s in self.shadows if draw() < s.weight / answered.weight]

    def reweighted(self, weights: dict[str, float]) -> Fleet:
        """A copy with new weights: the runtime keeps using the old fleet until it is swapped in."""

        def apply(variants: list[ServingVariant]) -> list[ServingVariant]:
            return [ServingVariant(v.name, v.deployment, weights.get(v.name, v.weight), v.image) for v in variants]

        return Fleet(apply(self.production), apply(self.shadows))


def fleet_of(config: dict[str, Any], deployments: dict[str, Deployment], images: dict[str, str]) -> Fleet:
    def serving(v: dict[str, Any]) -> ServingVariant:
        return ServingVariant(v["VariantName"], deployments[v["VariantName"]], weight(v), images[v["VariantName"]])

    return Fleet([serving(v) for v in config[PRODUCTION]], [serving(v) for v in config.get(SHADOW) or []])


def canned_behaviour(scenario: dict[str, Any], endpoint: str, image: str) -> dict[str, Any]:
    """How a variant without a container of its own answers: the first ``endpoints.rules`` entry
    with ``invoke`` whose ``when`` matches the variant's image (status, delay_ms), else a 200."""
    for rule in scenario["endpoints"].get("rules", []):
        if "invoke" in rule and rule_matches(rule["when"], name=endpoint, image=image):
            return rule["invoke"]
    return {}


def validate_weights(endpoint: dict[str, Any], desired: list[dict[str, Any]]) -> dict[str, float]:
    """The new weights of UpdateEndpointWeightsAndCapacities, or AWS's refusal."""
    known = {v["VariantName"] for v in described_variants(endpoint)}
    names = [d["VariantName"] for d in desired]
    unknown = sorted(set(names) - known)
    if unknown:
        raise AwsError(
            "ValidationException",
            f'The variant name(s) [{", ".join(unknown)}] is/are not present in endpoint "{endpoint["EndpointArn"]}".',
        )
    if len(set(names)) != len(names):
        raise AwsError("ValidationException", "Each variant may be named only once in DesiredWeightsAndCapacities.")
    for entry in desired:
        if (
            "DesiredWeight" not in entry
            and "DesiredInstanceCount" not in entry
            and "ServerlessUpdateConfig" not in entry
        ):
            raise AwsError(
                "ValidationException",
                f"Variant {entry['VariantName']}: give DesiredWeight, DesiredInstanceCount or ServerlessUpdateConfig.",
            )
    weights = {d["VariantName"]: float(d["DesiredWeight"]) for d in desired if "DesiredWeight" in d}
    production = {v["VariantName"]: float(v["CurrentWeight"]) for v in endpoint.get(PRODUCTION) or []}
    production.update({k: w for k, w in weights.items() if k in production})
    if not any(w > 0 for w in production.values()):
        raise AwsError("ValidationException", "At least one production variant must have a weight greater than 0.")
    return weights


class ShadowCopier:
    """Sends the copies to shadow variants from a small pool of threads, off the request's path."""

    def __init__(self, workers: int = 2) -> None:
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._slots = threading.BoundedSemaphore(SHADOW_QUEUE_LIMIT)
        self.dropped = 0

    def submit(self, work: Callable[[], None]) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="sagemaker-shadow")
        if not self._slots.acquire(blocking=False):
            self.dropped += 1
            return

        def run() -> None:
            try:
                work()
            finally:
                self._slots.release()

        self._pool.submit(run)

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
