"""The DAGs' operators: the Amazon provider's SageMaker operators, deferrable, with what the
platform adds (its requests built at run time from the run's values, resume after a task retry,
the job's own failure reason, waits as long as the job may run, rollback detection), and the
model lease that serializes runs of one model.

While SageMaker works, these tasks are deferred: the triggerer polls (SageMakerWaitTrigger) and no
worker slot is held. The provider's modules are imported here, at parse time; DAG files import the
provider module too, so Airflow's DAG processor imports it once before it forks a parser per file
(``parsing_pre_import_modules``) instead of once per parse.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.amazon.aws.operators.sagemaker import (
    SageMakerEndpointConfigOperator,
    SageMakerEndpointOperator,
    SageMakerModelOperator,
    SageMakerProcessingOperator,
    SageMakerTrainingOperator,
)

from mlops_dags import settings
from mlops_dags.compat import BaseOperator
from mlops_dags.waits import WaitsInTriggerer, defer_timeout, succeeded, wait_trigger

TERMINAL_FAILURE = {"Failed", "Stopped"}
IN_PROGRESS = {"InProgress", "Stopping"}
GAVE_UP = "max attempts reached"
SMOKE_ERROR_KEY = "smoke_test_error"


def _fail(message: str):
    from mlops_dags.compat import AirflowFailException

    return AirflowFailException(message)


def _airflow_run_id(context) -> str:
    return context["run_id"]


def _common(kwargs: dict) -> dict:
    return {
        "aws_conn_id": settings.AWS_CONN_ID,
        "check_interval": max(1, round(settings.check_interval_seconds())),
        **kwargs,
    }


class _TakesModelLease:
    """For a run's first task: take the model's lease for this DAG (mlops_dags.leases), or wait,
    deferred (resuming with ``claim_again``), while another run of the same model holds it. A run
    that waited longer than ``lease_wait_seconds`` fails, saying which run held the model. The
    lease is taken by the task that does the run's first step, not by a task of its own: every
    task start holds a worker slot a second or more."""

    lease_wait_seconds: float

    def _claim(self, context) -> float:
        """Seconds this run waited for the model; defers while another run holds it."""
        from datetime import UTC, datetime

        from mlops_core import names
        from mlops_dags import aws, leases, training
        from mlops_dags.compat import dag_run_is_active, time_delta_trigger

        params = context["params"]
        project = names.validate_name("project", params.get("project"))
        model = names.validate_name("model", params.get("model"))
        config = training.load_config(project, model)
        dag_id, run_id = context["dag"].dag_id, _airflow_run_id(context)
        uri = names.run_lease_uri(config.artifact_bucket, project, model, dag_id)
        lease = leases.claim(
            aws.client("s3"),
            uri,
            dag_id=dag_id,
            run_id=run_id,
            is_active=lambda held: dag_run_is_active(context, held.dag_id, held.run_id),
        )
        # Nothing runs before this task, so the run's start is when the waiting began.
        waited = (datetime.now(UTC) - context["dag_run"].start_date).total_seconds()
        if lease.held_by(dag_id, run_id):
            self.log.info("%s/%s is this run's (%s) after %.0f s", project, model, uri, waited)
            return round(waited, 1)
        if waited > self.lease_wait_seconds:
            raise _fail(
                f"{project}/{model} has been held by {lease.describe()} for longer than this run may wait "
                f"({self.lease_wait_seconds:.0f} s): this run did nothing"
            )
        self.log.info("%s/%s is held by %s: waiting for it to finish", project, model, lease.describe())
        self.defer(trigger=time_delta_trigger(settings.lease_poll_seconds()), method_name="claim_again")


class _JobOperator(WaitsInTriggerer):
    """Start a SageMaker job through the provider operator, or after a task retry resume waiting
    for the one this Airflow run started (it carries the run's tag): never a second job. When the
    job completes the triggerer ends the task (``end_task``) without resuming it on a worker, so
    nothing of the job is returned: its results are where the run names them
    (mlops_dags.training.prepare_run)."""

    end_task = True

    job_kind: str  # "training" | "processing"
    status_key: str
    arn_key: str

    def _describe(self, name: str) -> dict | None:
        from mlops_dags import aws

        try:
            return getattr(self.hook, f"describe_{self.job_kind}_job")(name)
        except Exception as exc:
            if aws.is_not_found(exc):
                return None
            raise

    def _job_name(self) -> str:
        return self.config[f"{self.job_kind.capitalize()}JobName"]

    def _start_or_resume(self, context, start):
        from mlops_dags import aws, training

        name = self._job_name()
        existing = self._describe(name)
        if existing is None:
            start(context)
            return None
        if not training.started_by(aws.client("sagemaker"), existing[self.arn_key], _airflow_run_id(context)):
            raise _fail(
                f"{self.job_kind} job {name} already exists and was not started by this DAG run: two runs "
                "started in the same second? Trigger again."
            )
        status = existing[self.status_key]
        self.log.info("%s job %s was started by this DAG run (task retry): it is %s", self.job_kind, name, status)
        if status in IN_PROGRESS:
            self.defer(
                trigger=wait_trigger(name, self.job_kind, self.wait_seconds, self.end_task),
                method_name="execute_complete",
                timeout=defer_timeout(self.wait_seconds),
            )
        return self._finished(existing)

    def prepare(self) -> None:
        """Set ``config`` (the request) and ``wait_seconds`` from the run's values: in execute and
        again on resuming, which Airflow does on a fresh operator."""
        raise NotImplementedError

    def _complete(self, event: dict[str, Any] | None):
        self.prepare()
        name = self._job_name()
        job = self._describe(name) or {}
        status = job.get(self.status_key)
        if not succeeded(event) and status in IN_PROGRESS:
            message = (event or {}).get("message", "no event") if isinstance(event, dict) else str(event)
            if GAVE_UP in message:
                self._stop(name)
                raise _fail(f"{self.job_kind} job {name} still {status} after {self.wait_seconds:.0f} s: stopped it")
            raise RuntimeError(f"waiting for {self.job_kind} job {name} failed ({message}); a retry waits again")
        return self._finished(job)

    def _finished(self, job: dict):
        name = self._job_name()
        status = job.get(self.status_key)
        if status in TERMINAL_FAILURE:
            # The job itself failed: a retry would only find the same failed job.
            raise _fail(
                f"{self.job_kind} job {name} ended {status}: {job.get('FailureReason') or 'no FailureReason given'}"
            )
        if status != "Completed":
            raise RuntimeError(f"{self.job_kind} job {name} is {status}")
        return None

    def _stop(self, name: str) -> None:
        try:
            getattr(self.hook.conn, f"stop_{self.job_kind}_job")(**{f"{self.job_kind.capitalize()}JobName": name})
            self.log.info("stopped %s job %s", self.job_kind, name)
        except Exception:  # noqa: BLE001 - it may have just ended
            self.log.warning("could not stop %s job %s", self.job_kind, name, exc_info=True)

    def on_kill(self) -> None:
        """The task was killed while it held a worker slot (before deferring): stop the job it started."""
        name = (getattr(self, "config", None) or {}).get(f"{self.job_kind.capitalize()}JobName")
        if name:
            self._stop(name)


class TrainingJobOperator(_JobOperator, _TakesModelLease, SageMakerTrainingOperator):
    """The run's first task: take the model's lease (waiting, deferred, while another run of the
    model holds it), name the run (mlops_dags.training.prepare_run: the task's return value, which
    every later task reads) and run its SageMaker training job. One task rather than three: the
    trainings of a batch of models all start after one task start each."""

    job_kind, status_key, arn_key = "training", "TrainingJobStatus", "TrainingJobArn"

    # __init__, execute and execute_complete on the operator class itself: Airflow wraps those of
    # each operator class (default_args; Airflow 2.11's ExecutorSafeguard), not a mixin's.
    def __init__(self, *, lease_wait_seconds: float, **kwargs):
        # print_log=False: tailing CloudWatch Logs would need logs:* for the execution role and
        # describe the job every 30 s; the job's log stays in CloudWatch, linked from the console.
        super().__init__(
            config={},
            **_common(kwargs),
            deferrable=True,
            print_log=False,
            check_if_job_exists=True,
            action_if_job_exists="fail",
        )
        self.lease_wait_seconds = lease_wait_seconds
        self.pipeline_run: dict | None = None

    def execute(self, context):
        return self._train(context)

    def claim_again(self, context, event: dict[str, Any] | None = None):
        return self._train(context)

    def execute_complete(self, context, event: dict[str, Any] | None = None):
        # Resumed (a failed wait; dag.test()): the run this task named is its own XCom.
        self.pipeline_run = context["ti"].xcom_pull(task_ids=self.task_id)
        self._complete(event)
        return self.pipeline_run

    def _train(self, context):
        from mlops_dags import training

        waited = self._claim(context)
        run = training.prepare_run(context["params"], airflow_run_id=_airflow_run_id(context))
        self.pipeline_run = {**run, "waited_seconds": waited}
        # Pushed now: when the job completes the triggerer ends the task, with no return value.
        context["ti"].xcom_push(key="return_value", value=self.pipeline_run)
        self.prepare()
        self._start_or_resume(context, super().execute)
        return self.pipeline_run

    def prepare(self) -> None:
        from mlops_dags import training

        run = self.pipeline_run
        config = training.load_config(run["project"], run["model"])
        self.config = training.training_request(run, config)
        self.wait_seconds = settings.job_wait_seconds(config.training.max_runtime_seconds)
        self.max_ingestion_time = int(self.wait_seconds)


class EvaluationJobOperator(_JobOperator, SageMakerProcessingOperator):
    """The run's evaluation (the image's ``evaluate`` entry point as a processing job); the quality
    gate reads and checks the evaluation.json it writes."""

    template_fields = (*SageMakerProcessingOperator.template_fields, "pipeline_run")
    job_kind, status_key, arn_key = "processing", "ProcessingJobStatus", "ProcessingJobArn"

    def execute(self, context):
        self.prepare()
        return self._start_or_resume(context, super().execute)

    def execute_complete(self, context, event: dict[str, Any] | None = None):
        return self._complete(event)

    def __init__(self, *, pipeline_run, **kwargs):
        super().__init__(config={}, **_common(kwargs), deferrable=True, print_log=False, action_if_job_exists="fail")
        self.pipeline_run = pipeline_run

    def prepare(self) -> None:
        from mlops_dags import training

        run = self.pipeline_run
        config = training.load_config(run["project"], run["model"])
        self.config = training.evaluation_request(run, config)
        self.wait_seconds = settings.job_wait_seconds(config.evaluation.max_runtime_seconds)
        self.max_ingestion_time = int(self.wait_seconds)


class DriftCheckJobOperator(_JobOperator, SageMakerProcessingOperator):
    """One model's drift check (mlops_dags.drift.plan's check): the serving image's ``monitor``
    entry point as a processing job, a Model Monitor bring-your-own container. Mapped over the due
    checks; a check whose window captured nothing runs no job. Resumed on a worker when the job
    ends (not ended by the triggerer), as a mapped task's end from a trigger is not relied upon."""

    template_fields = (*SageMakerProcessingOperator.template_fields, "check")
    job_kind, status_key, arn_key = "processing", "ProcessingJobStatus", "ProcessingJobArn"
    end_task = False

    def __init__(self, *, check, **kwargs):
        super().__init__(config={}, **_common(kwargs), deferrable=True, print_log=False, action_if_job_exists="fail")
        self.check = check

    def execute(self, context):
        if not self.check.get("manifest_uri"):
            self.log.info("%s: nothing captured in the window, no job", self.check["check_name"])
            return None
        self.prepare()
        return self._start_or_resume(context, super().execute)

    def execute_complete(self, context, event: dict[str, Any] | None = None):
        return self._complete(event)

    def prepare(self) -> None:
        from mlops_dags import drift, training

        config = training.load_config(self.check["project"], self.check["model"])
        self.config = drift.check_request(self.check, config)
        self.wait_seconds = settings.job_wait_seconds(config.evaluation.max_runtime_seconds)
        self.max_ingestion_time = int(self.wait_seconds)


class _CreateOnce:
    """A create operator for the release, its request built by ``deployment.<request>``. The
    resource is named after the run: one that exists already (a task retry, a redeployment) is the
    same resource, so it is reused."""

    request: str  # mlops_dags.deployment's request builder
    name_key: str

    def _create_once(self, context, create) -> dict:
        from mlops_dags import aws, deployment, training

        config = training.load_config(self.release["project"], self.release["model"])
        self.config = getattr(deployment, self.request)(self.release, config)
        name = self.config[self.name_key]
        try:
            create(context)
            self.log.info("created %s", name)
        except Exception as exc:
            if not aws.is_already_exists(exc):
                raise
            self.log.info("%s exists already: reused", name)
        return {self.name_key: name}


class ModelOperator(_CreateOnce, SageMakerModelOperator):
    """The SageMaker model of the release, with the manifest environment."""

    template_fields = (*SageMakerModelOperator.template_fields, "release")
    request, name_key = "model_request", "ModelName"

    # __init__ and execute on the operator class itself: Airflow wraps those of each operator
    # class (default_args; Airflow 2.11's ExecutorSafeguard), not a mixin's.
    def __init__(self, *, release, **kwargs):
        super().__init__(config={}, aws_conn_id=settings.AWS_CONN_ID, **kwargs)
        self.release = release

    def execute(self, context):
        return self._create_once(context, super().execute)


class EndpointConfigOperator(_CreateOnce, SageMakerEndpointConfigOperator):
    """The endpoint config of the release (one production variant)."""

    template_fields = (*SageMakerEndpointConfigOperator.template_fields, "release")
    request, name_key = "endpoint_config_request", "EndpointConfigName"

    def __init__(self, *, release, **kwargs):
        super().__init__(config={}, aws_conn_id=settings.AWS_CONN_ID, **kwargs)
        self.release = release

    def execute(self, context):
        return self._create_once(context, super().execute)


class EndpointDeploymentOperator(WaitsInTriggerer, SageMakerEndpointOperator):
    """Create the endpoint or update it in place (blue/green) with the provider's operator, after
    waiting out an earlier change and removing a Failed endpoint; then check that it serves the
    new config. Returns the config served before (None for a first deployment) and the action.

    Re-entrant: after every wait, and on a task retry, the next step is decided again from the
    endpoint's state and the tags this run put on it (mlops_dags.deployment.next_endpoint_step).
    """

    template_fields = (*SageMakerEndpointOperator.template_fields, "release")

    def __init__(self, *, release, **kwargs):
        super().__init__(config={}, **_common(kwargs), deferrable=True)
        self.release = release

    def execute(self, context):
        return self._deploy(context, None)

    def after_wait(self, context, event: dict[str, Any] | None = None):
        return self._deploy(context, event)

    def execute_complete(self, context, event: dict[str, Any] | None = None):
        # The endpoint's state decides, not the event: InService on the old config (a rollback)
        # satisfies the provider's waiter too.
        return self._deploy(context, event)

    def _deploy(self, context, event: dict[str, Any] | None):
        from mlops_dags import deployment

        self.wait_seconds = settings.endpoint_timeout_seconds()
        run_id = _airflow_run_id(context)
        step, endpoint = deployment.endpoint_step(self.release, airflow_run_id=run_id)
        name = self.release["endpoint_name"]
        if step.action == "wait":
            if event is not None and event.get("status") != "success":
                raise _fail(
                    f"endpoint {name} still {step.status} after {self.wait_seconds:.0f} s ({event.get('message')})"
                )
            self.log.info("endpoint %s is %s: waiting for that change to end", name, step.status)
            self._wait("endpoint_deleted" if step.status == "Deleting" else "endpoint")
        if step.action == "delete":
            self.log.info(
                "endpoint %s is Failed (%s): deleting it before creating it again", name, endpoint.get("FailureReason")
            )
            self.hook.conn.delete_endpoint(EndpointName=name)
            self._wait("endpoint_deleted")
        if step.action in ("verify", "unchanged"):
            if step.action == "unchanged":
                self.log.info("endpoint %s already serves %s", name, self.release["run_name"])
            return deployment.deployed(step)
        if step.action == "create":
            self.log.info("creating endpoint %s with %s", name, self.release["run_name"])
            self.config, self.operation = deployment.create_request(self.release, run_id), "create"
        else:
            self.config = deployment.prepare_update(self.release, endpoint, step.previous, run_id)
            self.operation = "update"
        super().execute(context)  # defers (WaitsInTriggerer) until the endpoint leaves Creating/Updating
        return self._deploy(context, {"status": "success"})

    def _wait(self, kind: str) -> None:
        self.defer(
            trigger=wait_trigger(self.release["endpoint_name"], kind, self.wait_seconds),
            method_name="after_wait",
            timeout=defer_timeout(self.wait_seconds),
        )


class SmokeTestOperator(BaseOperator):
    """One real invocation of the endpoint. On failure after an update, roll the endpoint back to
    the previous config (waiting in the triggerer) before failing, so it keeps serving what worked."""

    template_fields = ("release", "deployed")

    def __init__(self, *, release, deployed, **kwargs):
        super().__init__(**kwargs)
        self.release = release
        self.deployed = deployed

    def execute(self, context):
        from mlops_dags import deployment

        try:
            return deployment.smoke_test(self.release)
        except Exception as exc:  # noqa: BLE001 - any failure of the new version rolls back
            error = f"{type(exc).__name__}: {exc}"
            previous = (self.deployed or {}).get("previous_config")
            if not previous:
                raise _fail(
                    f"smoke test of {self.release['model_version']} on {self.release['endpoint_name']} failed: {error}"
                ) from exc
            deployment.start_rollback(self.release, previous)
            # Kept for the resumed task (dag.test() drops a deferral's kwargs; an XCom survives).
            context["ti"].xcom_push(key=SMOKE_ERROR_KEY, value=error)
            wait = settings.endpoint_timeout_seconds()
            self.defer(
                trigger=wait_trigger(self.release["endpoint_name"], "endpoint", wait),
                method_name="rolled_back",
                timeout=defer_timeout(wait),
            )

    def rolled_back(self, context, event: dict[str, Any] | None = None):
        from mlops_dags import deployment

        error = context["ti"].xcom_pull(task_ids=self.task_id, key=SMOKE_ERROR_KEY) or "see the task log"
        raise deployment.rollback_outcome(self.release, self.deployed["previous_config"], error)


class StartDeploymentOperator(_TakesModelLease, BaseOperator):
    """Take the model's Deployment lease, then find the package to deploy
    (mlops_dags.deployment.resolve_package)."""

    ui_color = "#e8f0fe"

    def __init__(self, *, lease_wait_seconds: float, **kwargs):
        super().__init__(**kwargs)
        self.lease_wait_seconds = lease_wait_seconds

    def execute(self, context):
        return self._start(context)

    def claim_again(self, context, event: dict[str, Any] | None = None):
        return self._start(context)

    def _start(self, context) -> dict:
        from mlops_dags import deployment

        waited = self._claim(context)
        return {**deployment.resolve_package(context["params"]), "waited_seconds": waited}


TRIAL_KEY = "candidate_trial"


class CandidateTrialOperator(BaseOperator):
    """The candidate on live traffic before it may replace production (mlops_dags.strategies): a
    shadow variant judged after the bake, or an A/B test whose candidate share rises step by step
    until a winner is decided. A no-op for the blue/green strategy and for a first deployment. Every
    wait is deferred: the endpoint changes through SageMakerWaitTrigger, the bakes are timers.

    The steps' state is kept in an XCom (``candidate_trial``): dag.test() drops a deferral's kwargs.
    Before it changes the endpoint the trial tags it with production's config, so a task retry
    still knows what to put back. A candidate that is not promoted skips the rest of the deployment."""

    template_fields = ("release",)

    def __init__(self, *, release, **kwargs):
        super().__init__(**kwargs)
        self.release = release

    def _config(self):
        from mlops_dags import training

        return training.load_config(self.release["project"], self.release["model"])

    def execute(self, context):
        from datetime import UTC, datetime

        from mlops_dags import aws, deployment, strategies

        config = self._config()
        strategy = config.deployment.strategy
        if strategy == "blue_green":
            return {"strategy": strategy}
        sm = aws.client("sagemaker")
        endpoint = deployment.describe_endpoint(sm, self.release["endpoint_name"]) or {}
        trial_config = strategies.trial_config_name(self.release["run_name"], strategy)
        serving = endpoint.get("EndpointConfigName")
        if endpoint.get("EndpointStatus") in deployment.ENDPOINT_IN_PROGRESS:
            raise RuntimeError(f"{self.release['endpoint_name']} is {endpoint['EndpointStatus']}: a retry tries again")
        if endpoint.get("EndpointStatus") != "InService" or serving == self.release["run_name"]:
            self.log.info("nothing else serves on %s: no %s", self.release["endpoint_name"], strategy)
            return {"strategy": "blue_green"}
        if serving == trial_config:  # a task retry: this trial's config is on already
            tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=endpoint["EndpointArn"])["Tags"]}
            production_config = tags[strategies.PRODUCTION_CONFIG_TAG]
        else:
            production_config = serving
            production = sm.describe_endpoint_config(EndpointConfigName=serving)
            for request, create in (
                (deployment.model_request(self.release, config), sm.create_model),
                (strategies.trial_config_request(self.release, config, production), sm.create_endpoint_config),
            ):
                try:
                    create(**request)
                except Exception as exc:
                    if not aws.is_already_exists(exc):
                        raise
            # Recorded before the change: a retry after it still knows what production was.
            sm.add_tags(
                ResourceArn=endpoint["EndpointArn"], Tags=[{"Key": strategies.PRODUCTION_CONFIG_TAG, "Value": serving}]
            )
            sm.update_endpoint(EndpointName=self.release["endpoint_name"], EndpointConfigName=trial_config)
            self.log.info("%s: %s of %s beside %s", self.release["endpoint_name"], strategy, trial_config, serving)
        production_variant = sm.describe_endpoint_config(EndpointConfigName=production_config)["ProductionVariants"][0]
        state = {
            "strategy": strategy,
            "production_config": production_config,
            "production_variant": production_variant["VariantName"],
            "trial_config": trial_config,
            "step": 0,
            "requested_at": datetime.now(UTC).isoformat(),
        }
        context["ti"].xcom_push(key=TRIAL_KEY, value=state)
        self._wait_for_endpoint("started")

    def _wait_for_endpoint(self, method_name: str) -> None:
        wait = settings.endpoint_timeout_seconds()
        self.defer(
            trigger=wait_trigger(self.release["endpoint_name"], "endpoint", wait),
            method_name=method_name,
            timeout=defer_timeout(wait),
        )

    def _state(self, context) -> dict:
        return context["ti"].xcom_pull(task_ids=self.task_id, key=TRIAL_KEY)

    def _save(self, context, state: dict) -> dict:
        context["ti"].xcom_push(key=TRIAL_KEY, value=state)
        return state

    def _serving(self, expected: str, doing: str) -> None:
        from mlops_dags import aws, deployment

        endpoint = deployment.describe_endpoint(aws.client("sagemaker"), self.release["endpoint_name"]) or {}
        if endpoint.get("EndpointStatus") != "InService" or endpoint.get("EndpointConfigName") != expected:
            raise _fail(
                f"{doing} on {self.release['endpoint_name']} did not complete: the endpoint is "
                f"{endpoint.get('EndpointStatus', 'gone')} on {endpoint.get('EndpointConfigName')} "
                f"({endpoint.get('FailureReason') or 'no reason given'})"
            )

    def _bake(self, context, state: dict) -> None:
        """Wait for this step's bake to end: one timer, or timers of ``check_interval_seconds`` when an
        A/B test may be aborted early (``baked`` checks the candidate after each)."""
        from datetime import UTC, datetime, timedelta

        config = self._config()
        bake = config.deployment.bake_seconds
        now = datetime.now(UTC)
        if "step_ends" not in state:
            self.log.info("%s: baking step %d for %d s", state["trial_config"], state["step"], bake)
            state = self._save(context, {**state, "step_ends": (now + timedelta(seconds=bake)).isoformat()})
        self._wait_until(state, config, now)

    def _wait_until(self, state: dict, config, now) -> None:
        from datetime import datetime

        from mlops_dags.compat import time_delta_trigger

        remaining = max(0.0, (datetime.fromisoformat(state["step_ends"]) - now).total_seconds())
        if state["strategy"] == "ab" and config.deployment.ab.abort_error_rate is not None:
            remaining = min(remaining, max(1.0, settings.check_interval_seconds()))
        self.defer(trigger=time_delta_trigger(remaining), method_name="baked", timeout=defer_timeout(remaining))

    def _checked_while_baking(self, context, state: dict, config, now) -> bool:
        """Before the step's bake is over: an A/B test whose candidate is clearly failing ends now
        (strategies.abort_ab), else the bake goes on (deferred again); True either way. False once
        the bake is over."""
        from datetime import datetime

        from mlops_dags import aws, strategies

        if now >= datetime.fromisoformat(state["step_ends"]):
            return False
        if state["strategy"] == "ab" and config.deployment.ab.abort_error_rate is not None:
            evidence = strategies.variant_evidence(
                aws.client("cloudwatch"),
                self.release["endpoint_name"],
                [state["production_variant"], strategies.CANDIDATE_VARIANT],
                datetime.fromisoformat(state["started"]),
                now,
            )
            verdict = strategies.abort_ab(*evidence, config.deployment.ab)
            if verdict is not None:
                self.log.warning("A/B test of %s aborted: %s", self.release["run_name"], verdict.reasons[0])
                started = datetime.fromisoformat(state["started"])
                self._save(context, {**state, "verdict": verdict.as_dict(), "seconds": (now - started).total_seconds()})
                aws.client("sagemaker").update_endpoint(
                    EndpointName=self.release["endpoint_name"], EndpointConfigName=state["production_config"]
                )
                self._wait_for_endpoint("concluded")
                return True
        self._wait_until(state, config, now)
        return True

    def started(self, context, event: dict[str, Any] | None = None):
        from datetime import UTC, datetime

        state = self._state(context)
        self._serving(state["trial_config"], f"starting the {state['strategy']} trial")
        state = self._save(context, {**state, "started": datetime.now(UTC).isoformat()})
        self._bake(context, state)

    def stepped(self, context, event: dict[str, Any] | None = None):
        state = self._state(context)
        self._serving(state["trial_config"], "shifting the A/B weights")
        self._bake(context, state)

    def baked(self, context, event: dict[str, Any] | None = None):
        from datetime import UTC, datetime

        from mlops_dags import aws, strategies

        state = self._state(context)
        config = self._config()
        now = datetime.now(UTC)
        if self._checked_while_baking(context, state, config, now):
            return
        sm = aws.client("sagemaker")
        shares = config.deployment.ab.traffic_shares
        if state["strategy"] == "ab" and state["step"] + 1 < len(shares):
            step = state["step"] + 1
            sm.update_endpoint_weights_and_capacities(
                EndpointName=self.release["endpoint_name"],
                DesiredWeightsAndCapacities=strategies.ab_weights(state["production_variant"], shares[step]),
            )
            self.log.info("A/B step %d: the candidate gets %.0f %% of the traffic", step, shares[step] * 100)
            self._save(context, {**{k: v for k, v in state.items() if k != "step_ends"}, "step": step})
            self._wait_for_endpoint("stepped")
            return
        started = datetime.fromisoformat(state["started"])
        evidence = strategies.variant_evidence(
            aws.client("cloudwatch"),
            self.release["endpoint_name"],
            [state["production_variant"], strategies.CANDIDATE_VARIANT],
            started,
            now,
        )
        if state["strategy"] == "shadow":
            verdict = strategies.judge(*evidence, config.deployment.shadow, self._agreement(config, state, now))
        else:
            verdict = strategies.decide_ab(*evidence, config.deployment.ab)
        self.log.info("%s of %s: %s", state["strategy"], self.release["run_name"], strategies.table_text(verdict.table))
        self._save(context, {**state, "verdict": verdict.as_dict(), "seconds": (now - started).total_seconds()})
        # The trial's variant leaves whatever the outcome: a promotion is the usual blue/green update.
        sm.update_endpoint(EndpointName=self.release["endpoint_name"], EndpointConfigName=state["production_config"])
        self._wait_for_endpoint("concluded")

    def _agreement(self, config, state: dict, now):
        """The captured pairs' prediction agreement over the bake (None when nothing is captured)."""
        import time
        from datetime import datetime

        from mlops_dags import agreement, aws, strategies

        if not config.data_capture.enabled:
            return None
        started = time.monotonic()
        found = agreement.measure(
            aws.client("s3"),
            config,
            self.release["endpoint_name"],
            state["production_variant"],
            strategies.CANDIDATE_VARIANT,
            datetime.fromisoformat(state["started"]),
            now,
        )
        self.log.info("prediction agreement: %s (%.1f s)", found, time.monotonic() - started)
        return found

    def concluded(self, context, event: dict[str, Any] | None = None):
        from mlops_dags import aws, notify, strategies
        from mlops_dags.compat import AirflowSkipException

        state = self._state(context)
        strategy, verdict = state["strategy"], state["verdict"]
        label = strategies.TRIAL_LABEL[strategy]
        self._serving(state["production_config"], f"ending the {label}")
        config = self._config()
        update = {
            "ModelPackageArn": self.release["package_arn"],
            "CustomerMetadataProperties": {"trial_outcome": strategies.outcome_record(verdict, strategy)},
        }
        if verdict["outcome"] == "rejected":
            update.update(
                ModelApprovalStatus="Rejected", ApprovalDescription=strategies.rejection_description(verdict, strategy)
            )
        aws.client("sagemaker").update_model_package(**update)
        note = strategies.trial_notice(
            environment=config.environment,
            release=self.release,
            verdict=verdict,
            strategy=strategy,
            seconds=state["seconds"],
            production_config=state["production_config"],
        )
        notify.send(notify.audience_of(config), note)
        if verdict["outcome"] != "promoted":
            raise AirflowSkipException(
                f"{self.release['model_version']}: {label} {verdict['outcome']} ({'; '.join(verdict['reasons'])})"
            )
        return {"strategy": strategy, "promoted": True, "table": verdict["table"]}
