"""The retraining DAG's planning: which models to retrain, with which image."""

from __future__ import annotations

import logging
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


def plan(*, ignore_interval: bool = False) -> dict:
    """Training confs for every model with retraining enabled that serves on an endpoint and
    whose newest run is ``retraining.interval_days`` old (any age with ``ignore_interval``).

    A model that cannot be planned (endpoint unreadable, ...) is reported in ``errors`` without
    stopping the others.
    """
    from mlops_core.names import MANIFEST_ENV, last_trained_at
    from mlops_core.pipeline_config import list_pipeline_configs
    from mlops_dags.training import known_run_names, serving_run

    now = _now()
    sm = aws.client("sagemaker")
    confs, skipped, errors = [], [], []
    for config in list_pipeline_configs(settings.dags_folder()):
        label = f"{config.project}/{config.model}"
        if not config.retraining.enabled:
            skipped.append(f"{label}: retraining disabled")
            continue
        try:
            serving = serving_run(sm, config.endpoint_name)
            if serving is None:
                skipped.append(f"{label}: nothing serving on {config.endpoint_name} yet")
                continue
            # Every run counts, deployed or not: a candidate the gate rejected was still a retraining.
            last = last_trained_at(known_run_names(sm, config.project, config.model), config.project, config.model)
            if not ignore_interval and not config.retraining.is_due(last, now):
                skipped.append(
                    f"{label}: last trained {last:%Y-%m-%d %H:%M} UTC, retrains every "
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
            log.exception("cannot plan the retraining of %s", label)
            errors.append(f"{label}: {type(exc).__name__}: {exc}")
    for line in skipped:
        log.info("not retrained: %s", line)
    log.info("retraining %d model(s): %s", len(confs), [f"{c['project']}/{c['model']}" for c in confs])
    return {"confs": confs, "skipped": skipped, "errors": errors}
