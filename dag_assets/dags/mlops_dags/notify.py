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


def _log_url(ti) -> str | None:
    try:
        return getattr(ti, "log_url", None) or None
    except Exception:  # noqa: BLE001 - a property that needs what this context lacks
        return None


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
            log_url=_log_url(ti),
            subject_of_run=what,
        )
        send(audience, note)
        _put_failure_metric(audience.environment, ti.dag_id)
    except Exception:  # noqa: BLE001 - the callback must not mask the task's own failure
        log.exception("failure notification could not be prepared")


# Why Airflow failed a run, as its DAG callback context's "reason" says it.
DAG_FAILURE_REASONS = {
    "task_failure": "a task failed",
    "timed_out": "the run exceeded its dagrun_timeout",
    "all_tasks_deadlocked": "no task could run any more: their upstream tasks can never succeed",
}


@dataclass(frozen=True)
class FailedTask:
    name: str  # task_id, with [map_index] for a mapped task instance
    log_url: str | None


def _failed_task(ti) -> FailedTask:
    map_index = getattr(ti, "map_index", -1)
    suffix = f"[{map_index}]" if isinstance(map_index, int) and map_index >= 0 else ""
    return FailedTask(name=f"{ti.task_id}{suffix}", log_url=_log_url(ti))


def _failure_order(ti) -> tuple:
    end = getattr(ti, "end_date", None)
    return (end is None, end.timestamp() if end is not None else 0.0, ti.task_id, getattr(ti, "map_index", -1))


def _is_failed(state) -> bool:
    return str(getattr(state, "value", state)) == "failed"


def _failed_task_ids_from_task_sdk(dag_id: str, run_id: str) -> list[str]:
    """Airflow 3: the run's failed tasks as the DAG processor knows them (GetTaskStates). Empty on
    Airflow 2, and where no Task SDK supervisor answers (dag.test() runs DAG callbacks in process)."""
    try:
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        states = RuntimeTaskInstance.get_task_states(dag_id=dag_id, run_ids=[run_id])
    except Exception:  # noqa: BLE001 - ImportError on Airflow 2, NameError without a supervisor
        log.debug("task states not available from the Task SDK in this callback context")
        return []
    return sorted(task for task, state in (states.get(run_id) or {}).items() if _is_failed(state))


def failed_tasks_of(context, dag_id: str, run_id: str) -> list[FailedTask]:
    """The failed task instances of a run that failed for another reason than a task failure (a
    timeout, a deadlock), as far as its DAG callback context tells: Airflow 2.11 hands the ORM
    DagRun (every failed task instance with its log URL, first to fail first); Airflow 3 a DagRun
    data model, and the Task SDK answers with task states where a supervisor runs the callback.
    """
    dag_run = context.get("dag_run")
    get_task_instances = getattr(dag_run, "get_task_instances", None)
    if callable(get_task_instances):
        try:
            # First to fail first: its log is the one to read.
            tis = sorted(get_task_instances(state="failed"), key=_failure_order)
            return [_failed_task(ti) for ti in tis]
        except Exception:  # noqa: BLE001 - e.g. a DagRun detached from its session
            log.warning("could not list the failed task instances of %s", run_id, exc_info=True)
    return [FailedTask(name=name, log_url=None) for name in _failed_task_ids_from_task_sdk(dag_id, run_id)]


def dag_failure_error(context) -> str:
    """The error a DAG callback context carries: its exception when there is one, else Airflow's
    reason for failing the run (Airflow 2.11 and 3 both pass "reason"; neither passes the failed
    task's exception, which the task-level notice carries)."""
    exception = context.get("exception")
    if exception is not None:
        if isinstance(exception, BaseException):
            return f"{type(exception).__name__}: {exception}"
        return str(exception)
    reason = context.get("reason")
    if not reason:
        return "unknown (see the failed tasks' logs)"
    explained = DAG_FAILURE_REASONS.get(str(reason))
    return f"{explained} ({reason})" if explained else str(reason)


def dag_run_url(dag_id: str, run_id: str) -> str | None:
    """The DAG run in the Airflow UI: Airflow 3's run page, Airflow 2's grid view of the run."""
    from urllib.parse import quote

    from mlops_dags.compat import AIRFLOW_3

    try:
        if AIRFLOW_3:
            from airflow.sdk.configuration import conf

            base = conf.get("api", "base_url", fallback="http://localhost:8080/")
            return f"{base.rstrip('/')}/dags/{dag_id}/runs/{quote(run_id)}"
        from airflow.configuration import conf

        base = conf.get("webserver", "base_url", fallback="http://localhost:8080")
        return f"{base.rstrip('/')}/dags/{dag_id}/grid?dag_run_id={quote(run_id)}"
    except Exception:  # noqa: BLE001
        log.warning("no Airflow base URL for the run's link", exc_info=True)
        return None


def _unfinished_at_timeout(context) -> list[FailedTask]:
    """The task a timed-out run was still in: the callback context's task instance (Airflow 3: the
    run's last unfinished one, which the timeout has just skipped)."""
    ti = context.get("task_instance") or context.get("ti")
    state = str(getattr(getattr(ti, "state", None), "value", getattr(ti, "state", None)))
    if context.get("reason") != "timed_out" or ti is None or state in ("success", "failed"):
        return []
    return [FailedTask(name=f"{ti.task_id} (unfinished)", log_url=_log_url(ti))]


def _stop_sagemaker_jobs(context, dag_id: str, run_id: str) -> None:
    """A failed Training & Evaluation run (a timeout, a killed or failed task) leaves no SageMaker
    job running: its in-progress jobs are stopped."""
    from mlops_core import names

    params = context.get("params") or {}
    if dag_id != names.DAG_TRAINING or not params.get("project") or not params.get("model"):
        return
    try:
        from mlops_dags import training

        stopped = training.stop_jobs_of_run(params["project"], params["model"], run_id)
        if stopped:
            log.info("stopped the SageMaker jobs of the failed run %s: %s", run_id, stopped)
    except Exception:  # noqa: BLE001 - the notice must still go out
        log.exception("could not stop the SageMaker jobs of %s", run_id)


def on_dag_failure(context) -> None:
    """DAG-level on_failure_callback. Stops the run's SageMaker jobs. A run failed by a task was
    notified (and counted) by that task's own callback, with its error and log: nothing more is
    sent. Any other failure (the run timed out, no task could run) is notified and counted here:
    a summary naming the failed task(s) if any, the reason and links to their log and to the run."""
    from mlops_dags import messages

    try:
        dag_run = context.get("dag_run")
        dag_id = getattr(dag_run, "dag_id", None) or getattr(context.get("dag"), "dag_id", None) or "?"
        run_id = getattr(dag_run, "run_id", None) or context.get("run_id") or "?"
        _stop_sagemaker_jobs(context, dag_id, run_id)
        if context.get("reason") == "task_failure":
            log.info("run %s of %s failed in a task: that task's failure notice was sent", run_id, dag_id)
            return
        failed = failed_tasks_of(context, dag_id, run_id) + _unfinished_at_timeout(context)
        audience, what = _audience_for_context(context)
        note = messages.dag_run_failed(
            environment=audience.environment,
            dag_id=dag_id,
            run_id=run_id,
            failed_tasks=[t.name for t in failed],
            error=dag_failure_error(context),
            log_url=next((t.log_url for t in failed if t.log_url), None),
            run_url=dag_run_url(dag_id, run_id),
            subject_of_run=what,
        )
        send(audience, note)
        _put_failure_metric(audience.environment, dag_id)
    except Exception:  # noqa: BLE001 - the callback must not change the run's outcome
        log.exception("DAG failure notification could not be prepared")
