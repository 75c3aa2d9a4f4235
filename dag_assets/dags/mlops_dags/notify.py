"""Deliver notifications to SNS and Slack, and the DAGs' failure callbacks.

A notification must never hide or change a pipeline's own outcome: every channel is tried on its
own, transient errors are retried (botocore standard retries for SNS, slack_sdk RetryHandlers for
the webhook), and what still fails is logged, never raised.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from mlops_dags.messages import Notification

log = logging.getLogger(__name__)

SLACK_TIMEOUT_SECONDS = 10
SLACK_MAX_RETRIES = 2


@dataclass(frozen=True)
class Audience:
    """Where one pipeline's notifications go (from its pipeline configuration)."""

    environment: str
    topic_arns: tuple[str, ...]
    slack_secret_names: tuple[str, ...]


def audience_of(config) -> Audience:
    secret = config.notifications.slack_webhook_secret_name
    return Audience(
        environment=config.environment,
        topic_arns=(config.notifications.sns_topic_arn,),
        slack_secret_names=(secret,) if secret else (),
    )


def platform_audience(configs: Iterable) -> Audience:
    """Everyone who hears about any model: for runs not tied to one model (retraining) or whose
    model could not be read."""
    configs = list(configs)
    environments = sorted({c.environment for c in configs})
    return Audience(
        environment=environments[0] if len(environments) == 1 else ",".join(environments) or "unknown",
        topic_arns=tuple(sorted({c.notifications.sns_topic_arn for c in configs})),
        slack_secret_names=tuple(
            sorted(
                {
                    c.notifications.slack_webhook_secret_name
                    for c in configs
                    if c.notifications.slack_webhook_secret_name
                }
            )
        ),
    )


def slack_webhook_client(url: str):
    from slack_sdk.http_retry.builtin_handlers import (
        ConnectionErrorRetryHandler,
        RateLimitErrorRetryHandler,
        ServerErrorRetryHandler,
    )
    from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
    from slack_sdk.webhook import WebhookClient

    backoff = BackoffRetryIntervalCalculator(backoff_factor=0.5)
    return WebhookClient(
        url,
        timeout=SLACK_TIMEOUT_SECONDS,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=SLACK_MAX_RETRIES, interval_calculator=backoff),
            ServerErrorRetryHandler(max_retry_count=SLACK_MAX_RETRIES, interval_calculator=backoff),
            RateLimitErrorRetryHandler(max_retry_count=SLACK_MAX_RETRIES),
        ],
    )


def webhook_url_from_secret(secret_string: str) -> str:
    """The secret holds the webhook URL, as plain text or as JSON {"webhook_url"|"url": ...}."""
    text = secret_string.strip()
    if text.startswith("{"):
        data = json.loads(text)
        for key in ("webhook_url", "url"):
            if data.get(key):
                return data[key]
        raise ValueError("Slack secret JSON has neither 'webhook_url' nor 'url'")
    return text


def send_sns(topic_arn: str, note: Notification) -> bool:
    from mlops_dags import aws

    try:
        aws.client("sns").publish(TopicArn=topic_arn, Subject=note.sns_subject, Message=note.text)
        log.info("notified SNS topic %s: %s", topic_arn, note.sns_subject)
        return True
    except Exception:  # noqa: BLE001 - a notification never fails the pipeline
        log.exception("SNS notification to %s failed (the pipeline's outcome is unchanged)", topic_arn)
        return False


def send_slack(secret_name: str, note: Notification) -> bool:
    from mlops_dags import aws

    try:
        secret = aws.client("secretsmanager").get_secret_value(SecretId=secret_name)["SecretString"]
        response = slack_webhook_client(webhook_url_from_secret(secret)).send(text=note.slack_text, blocks=note.blocks)
        if response.status_code != 200:
            log.error(
                "Slack webhook answered %s %r (the pipeline's outcome is unchanged)",
                response.status_code,
                response.body,
            )
            return False
        log.info("notified Slack (%s): %s", secret_name, note.slack_text)
        return True
    except Exception:  # noqa: BLE001 - a notification never fails the pipeline
        log.exception("Slack notification failed (the pipeline's outcome is unchanged)")
        return False


def send(audience: Audience, note: Notification) -> dict[str, bool]:
    """Send to every channel; returns which succeeded (for the logs and tests), never raises."""
    results = {}
    for arn in audience.topic_arns:
        results[f"sns:{arn}"] = send_sns(arn, note)
    for secret in audience.slack_secret_names:
        results[f"slack:{secret}"] = send_slack(secret, note)
    return results


# --- failure callbacks --------------------------------------------------------------------------


def _audience_for_context(context) -> tuple[Audience, str | None]:
    """The failed run's model's audience, or everyone's when the model is unknown/unreadable."""
    from mlops_core.pipeline_config import list_pipeline_configs, load_pipeline_config
    from mlops_dags import settings

    params = context.get("params") or {}
    project, model = params.get("project"), params.get("model")
    if project and model:
        try:
            return audience_of(load_pipeline_config(settings.dags_folder(), project, model)), f"{project}/{model}"
        except Exception:  # noqa: BLE001 - e.g. a conf naming an unknown model: tell the platform
            log.warning("no readable pipeline configuration for %s/%s; notifying every topic", project, model)
    return platform_audience(list_pipeline_configs(settings.dags_folder())), (
        f"{project}/{model}" if project and model else None
    )


def _put_failure_metric(environment: str, dag_id: str) -> None:
    from mlops_core import names
    from mlops_dags import aws

    try:
        dimensions = names.pipeline_metric_dimensions(environment, dag_id)
        aws.client("cloudwatch").put_metric_data(
            Namespace=names.PIPELINE_METRICS_NAMESPACE,
            MetricData=[
                {
                    "MetricName": names.PIPELINE_FAILURE_METRIC,
                    "Value": 1.0,
                    "Unit": "Count",
                    "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
                }
            ],
        )
    except Exception:  # noqa: BLE001
        log.exception("could not publish the pipeline failure metric")


def on_task_failure(context) -> None:
    """Task-level on_failure_callback: SNS + Slack with the task, the error and a log link."""
    from mlops_dags import messages

    try:
        ti = context.get("task_instance") or context.get("ti")
        dag_run = context.get("dag_run")
        audience, what = _audience_for_context(context)
        error = context.get("exception")
        note = messages.task_failed(
            environment=audience.environment,
            dag_id=ti.dag_id,
            task_id=ti.task_id,
            run_id=getattr(dag_run, "run_id", None) or getattr(ti, "run_id", "?"),
            try_number=getattr(ti, "try_number", None),
            error=f"{type(error).__name__}: {error}" if error else "unknown error (see the log)",
            log_url=getattr(ti, "log_url", None),
            subject_of_run=what,
        )
        send(audience, note)
        _put_failure_metric(audience.environment, ti.dag_id)
    except Exception:  # noqa: BLE001 - the callback must not mask the task's own failure
        log.exception("failure notification could not be prepared")


def on_dag_failure(context) -> None:
    """DAG-level on_failure_callback: one summary per failed run (tasks may not have run at all,
    e.g. a run timeout)."""
    from mlops_dags import messages

    try:
        dag_run = context.get("dag_run")
        dag_id = getattr(dag_run, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?")
        failed = []
        try:
            failed = sorted(ti.task_id for ti in dag_run.get_task_instances(state="failed"))
        except Exception:  # noqa: BLE001 - not available in every callback context
            log.debug("failed task instances not available in this callback context")
        audience, what = _audience_for_context(context)
        note = messages.dag_run_failed(
            environment=audience.environment,
            dag_id=dag_id,
            run_id=getattr(dag_run, "run_id", "?"),
            failed_tasks=failed,
            reason=context.get("reason"),
            subject_of_run=what,
            url=None,
        )
        send(audience, note)
    except Exception:  # noqa: BLE001
        log.exception("DAG failure notification could not be prepared")
