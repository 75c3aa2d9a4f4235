"""The retraining DAG's planning: which models to retrain, with which image."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from mlops_dags import aws, settings

log = logging.getLogger(__name__)


def image_tag(image_uri: str) -> str:
    """The tag of ``<registry>/<repository>:<tag>`` (a registry host may carry a port)."""
    repository, _, tag = image_uri.rpartition(":")
    if not repository or "/" in tag:
        raise ValueError(f"image {image_uri!r} has no tag")
    return tag


def _now() -> datetime:
    return datetime.now(UTC)


def label(config) -> str:
    return f"{config.project}/{config.model}"


def plan(*, ignore_interval: bool = False, after: str | None = None, run_is_active: Callable | None = None) -> dict:
    """Training confs for every model with retraining enabled that serves on an endpoint, has no
    Training & Evaluation run in progress and whose newest run is ``retraining.interval_days`` old
    (any age with ``ignore_interval``).

    Models are taken in (project, model) order after ``after``, at most
    settings.retraining_batch_size() of them; ``continue_after`` names the last model looked at
    when more remain (the DAG then starts a follow-up run from there), else None.

    A model that cannot be planned (endpoint unreadable, ...) is reported in ``errors`` without
    stopping the others. ``run_is_active(dag_id, run_id)`` tells whether a lease holder still works.
    """
    from mlops_core import names
    from mlops_core.names import MANIFEST_ENV
    from mlops_core.pipeline_config import list_pipeline_configs
    from mlops_dags import leases
    from mlops_dags.training import newest_run, serving_run

    now = _now()
    sm, s3 = aws.client("sagemaker"), aws.client("s3")
    is_active = (lambda lease: run_is_active(lease.dag_id, lease.run_id)) if run_is_active else (lambda lease: True)
    confs, skipped, errors = [], [], []
    batch = settings.retraining_batch_size()
    continue_after = None
    configs = [c for c in list_pipeline_configs(settings.dags_folder()) if after is None or label(c) > after]
    for index, config in enumerate(configs):
        if len(confs) >= batch:
            continue_after = label(configs[index - 1])
            break
        name = label(config)
        if not config.retraining.enabled:
            skipped.append(f"{name}: retraining disabled")
            continue
        try:
            uri = names.run_lease_uri(config.artifact_bucket, config.project, config.model, names.DAG_TRAINING)
            holder = leases.active_holder(s3, uri, is_active)
            if holder is not None:
                skipped.append(f"{name}: {holder.describe()} is still in progress")
                continue
            serving = serving_run(sm, config.endpoint_name)
            if serving is None:
                skipped.append(f"{name}: nothing serving on {config.endpoint_name} yet")
                continue
            # Every run counts, deployed or not: a candidate the gate rejected was still a retraining.
            newest = newest_run(sm, config.project, config.model)
            last = newest.trained_at if newest else None
            if not ignore_interval and not config.retraining.is_due(last, now):
                skipped.append(
                    f"{name}: last trained {last:%Y-%m-%d %H:%M} UTC, retrains every "
                    f"{config.retraining.interval_days} day(s)"
                )
                continue
            container = sm.describe_model(ModelName=serving)["PrimaryContainer"]
            confs.append(
                {
                    "project": config.project,
                    "model": config.model,
                    "image_tag": image_tag(container["Image"]),
                    "retraining": True,
                    "source_commit": container.get("Environment", {}).get(MANIFEST_ENV["source_commit"]),
                }
            )
        except Exception as exc:  # noqa: BLE001 - one model's problem must not stop the others
            log.exception("cannot plan the retraining of %s", name)
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
    for line in skipped:
        log.info("not retrained: %s", line)
    log.info("retraining %d model(s): %s", len(confs), [f"{c['project']}/{c['model']}" for c in confs])
    if continue_after:
        log.info("more models after %s: a follow-up Retraining run plans them", continue_after)
    return {"confs": confs, "skipped": skipped, "errors": errors, "continue_after": continue_after}
