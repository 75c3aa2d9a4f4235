"""The local platform: local AWS, the CDK app's ``local`` environment inside it, a real Airflow 3,
the Slack sink, and the calls CI and people make (the ``mlops`` tool, the trigger Lambda's handler,
``sagemaker-runtime``). Everything binds 127.0.0.1; ``stop()`` ends every process it started.

Every ModelPipeline of the local environment is provisioned and published to the DAG folder; the
selected models (all by default) get their repository's sample data and are what the demo runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from local_mode.actors import Actor, Identities
from local_mode.actors import Platform as ActorsPlatform
from local_mode.airflow import FINISHED, LocalAirflow
from local_mode.cdk_env import ProvisionReport, provision, synthesize
from local_mode.models import TEMPLATE, LocalModel, resolve
from local_mode.processes import ProcessGroup
from local_mode.progress import Steps
from local_mode.slack_sink import SlackSink
from mlops_cli.dotenv import read_dotenv

REPO = Path(__file__).resolve().parents[1]
RUNNERS = "local_aws.sagemaker.process_runners"
LOCAL_ACCOUNT = "123456789012"
# The local SageMaker's own delays are short: the real work (train, evaluate, serve start-up) takes
# what it takes.
SCENARIO = {
    "training": {"delay_seconds": 0.5},
    "processing": {"delay_seconds": 0.5},
    "endpoints": {"create_delay_seconds": 0.5, "update_delay_seconds": 0.5},
    "runner": {"serve_workers": 1, "default_model_source": str(TEMPLATE)},
    # Lambda retries a failed asynchronous invocation (the drift alarm's, through SNS) after 1 and
    # 2 minutes; a demo waits seconds.
    "lambda": {"async_retry_delays_seconds": [5.0, 10.0]},
}
BOOT_JOIN_SECONDS = 15.0  # stop(): how long the Airflow start-up thread may take to give up
STARTUP_TOTAL = "start-up total"


@dataclass
class RunOutcome:
    dag_id: str
    run_id: str
    state: str
    seconds: float
    tasks: dict[str, dict[str, Any]]  # task_id -> {"state", "duration", "start_date"}
    conf: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EndpointAccess:
    """How a person calls a model's endpoint through the local AWS, as they would call SageMaker's
    runtime: the URL of InvokeEndpoint, a SigV4-signed curl command and a boto3 one."""

    url: str
    curl: str
    boto3: str


@dataclass(frozen=True)
class InboxMark:
    sns: int
    slack: int


class LocalPlatform:
    def __init__(
        self,
        *,
        state_dir: Path,
        say: Callable[[str], None] = print,
        airflow_venv: Path | None = None,
        models: Sequence[str] = (),
        model_repos: Mapping[str | None, Path] | None = None,
        projects_dir: Path | None = None,
        project_files: Sequence[Path] = (),
        steps: Steps | None = None,
        enforce_iam: bool = True,
    ) -> None:
        """``models``: ``<project>/<model>`` to run (default: all); ``model_repos``: the repository
        standing in for a model's image (key None: the one selected model), default the template;
        ``projects_dir``/``project_files``: other project files than projects/ (tests, a team's own);
        ``enforce_iam``: local AWS authorizes every call (benchmarks compare without)."""
        self.state_dir = Path(state_dir)
        self.log_dir = self.state_dir / "logs"
        self.say = say
        self.wanted = list(models)
        self.model_repos = dict(model_repos or {})
        self.projects_dir = projects_dir
        self.project_files = list(project_files)
        self.steps = steps or Steps()
        self.enforce_iam = enforce_iam
        self.authorization: dict[str, Any] | None = None  # local AWS's authorization log, at stop
        self.processes = ProcessGroup(self.log_dir)
        self.aws = None
        self.identities: Identities | None = None
        self.airflow = LocalAirflow(home=self.state_dir / "airflow", processes=self.processes, aws_env={})
        if airflow_venv:
            self.airflow.venv = airflow_venv
        self.slack = SlackSink()
        self.report: ProvisionReport | None = None
        self.models: list[LocalModel] = []
        self.skipped: list[str] = []  # models of the environment left out, and why
        self.queue_url: str | None = None
        self.trigger_env: dict[str, str] = {}
        self._saved_env: dict[str, str | None] = {}
        self._pipeline_id = int(time.time()) % 10**7
        self._job_id = 0
        self._sns: list[dict[str, str]] = []
        self._booting: threading.Thread | None = None
        self._started_at: float | None = None
        self._startup_seconds: float | None = None

    @property
    def timings(self) -> dict[str, float]:
        """Seconds of each finished start-up step, and the whole start-up."""
        timings = {step.name: step.seconds for step in self.steps.all() if not step.running}
        if self._startup_seconds is not None:
            timings[STARTUP_TOTAL] = self._startup_seconds
        return timings

    # -- start / stop --------------------------------------------------------------------------
    def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.airflow.prepare()
        self._started_at = time.monotonic()
        with self.steps.step("local AWS on 127.0.0.1") as step:
            self._start_aws()
            step.detail = self.aws.url
        self.identities = Identities(aws=self.aws, credentials_file=self.state_dir / "mwaa-execution-role.credentials")
        self.airflow.aws_env = self.identities.env(Actor.DAG_TASKS)
        airflow_error: list[BaseException] = []

        def start_airflow() -> None:
            from mlops_core import names

            try:
                with self.steps.step("Airflow 3: database") as step:
                    step.detail = self.airflow.migrate()
                with self.steps.step("Airflow 3: scheduler, API server, DAG processor up, DAGs parsed") as step:
                    self.airflow.start()
                    self.airflow.wait_ready([names.DAG_TRAINING, names.DAG_DEPLOYMENT, names.DAG_RETRAINING])
                    step.detail = self.airflow.url
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                airflow_error.append(exc)

        # Airflow migrates its database and starts (~30 s of imports) while the app synthesizes and
        # its resources are created: DAG parsing needs neither.
        # stop() requests the stop of every process, then joins this thread: once a stop is requested
        # the process group starts nothing more, so Airflow cannot come up after the stop.
        self._booting = threading.Thread(target=start_airflow, name="airflow-start", daemon=True)
        self._booting.start()
        self._provision()
        self._booting.join()
        if airflow_error:
            raise airflow_error[0]
        from mlops_core import names

        self.write_pipeline_configs()
        for dag_id in (names.DAG_TRAINING, names.DAG_DEPLOYMENT):
            self.airflow.unpause(dag_id)
        self._startup_seconds = time.monotonic() - self._started_at

    def _start_aws(self) -> None:
        from local_aws import LocalAws

        self.aws = LocalAws(
            state_dir=self.state_dir / "local-aws",
            scenario=SCENARIO,
            job_runner=f"{RUNNERS}:ProcessJobRunner",
            endpoint_runner=f"{RUNNERS}:ProcessEndpointRunner",
            enforce_iam=self.enforce_iam,
        )
        self.aws.start()
        # This process plays CI, the trigger Lambda and the endpoint's client: boto3 reaches the
        # local AWS through the standard endpoint variables, nothing else changes.
        for key, value in self.aws.env.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value
        self.slack.start()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.slack.stop()
        # Refuse new processes and SIGTERM the running ones (`airflow db migrate` included), so the
        # Airflow boot thread, if still running, ends without starting anything; then stop them all.
        self.processes.request_stop()
        if self._booting is not None:
            self._booting.join(timeout=BOOT_JOIN_SECONDS)
            if self._booting.is_alive():
                self.say(f"the Airflow start-up thread did not end within {BOOT_JOIN_SECONDS:.0f} s")
        self.processes.stop_all()
        if self.aws is not None:
            with contextlib.suppress(Exception):
                self.record_authorization()
            with contextlib.suppress(Exception):
                self.aws.stop()
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()

    def record_authorization(self) -> None:
        """What local AWS authorized during the run (``logs/authorization.json``): every distinct
        (principal, action, resource) and every denial with AWS's message."""
        summary = self.aws.authorization()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        (self.log_dir / "authorization.json").write_text(json.dumps(summary, indent=2))
        self.authorization = summary

    def __enter__(self) -> LocalPlatform:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_locations(self) -> list[str]:
        places = [f"processes: {self.log_dir}", f"Airflow task logs: {self.airflow.logs_folder}"]
        if self.aws is not None:
            places.append(f"local AWS (SageMaker jobs, serve): {self.aws.log_path} and {self.state_dir / 'local-aws'}")
        return places

    # -- provisioning --------------------------------------------------------------------------
    def client(self, actor: Actor, service: str, *, project: str | None = None) -> Any:
        assert self.identities is not None, "start() first"
        return self.identities.client(actor, service, project=project)

    def _provision(self) -> None:
        with self.steps.step("CDK synth of the 'local' environment (config/local.yaml)") as step:
            synth = synthesize("local", projects_dir=self.projects_dir, project_files=self.project_files)
            count = len(synth.pipelines)
            step.detail = f"{len(synth.stacks)} stacks, {count} model{'' if count == 1 else 's'}"
        with self.steps.step("its resources created in local AWS") as step:
            self.report = provision(synth, self.identities.session(Actor.PROVISIONER))
            step.detail = f"{len(self.report.created)} resources"
        # The trigger Lambda's environment exactly as the app defines it (DagTrigger construct).
        if not self.report.trigger_env:
            raise RuntimeError("the synthesized local environment has no trigger Lambda (DagTrigger construct)")
        if not self.report.mwaa_execution_role_arn:
            raise RuntimeError("the synthesized local environment has no MWAA environment (its execution role)")
        self.trigger_env = self.report.trigger_env
        self.identities.bind(
            ActorsPlatform(
                account=synth.account,
                environment=synth.environment,
                mwaa_environment_name=self.report.mwaa_environment_name,
                mwaa_execution_role_arn=self.report.mwaa_execution_role_arn,
                trigger_function_name=self.report.trigger_function_name,
                trigger_role_arn=self.report.trigger_role_arn,
                ci=synth.ci,
            )
        )
        with self.steps.step("models to run, their repositories") as step:
            self.models, self.skipped = resolve(self.report.pipelines, self.wanted, self.model_repos, say=self.say)
            step.detail = ", ".join(f"{m.key} ({_shown(m.source.path)})" for m in self.models)
        # The image of each model is its repository's code, run with a Python that has its requirements.
        self.aws.update_scenario(
            {
                "runner": {
                    "model_sources": {m.repository: str(m.source.path) for m in self.models},
                    "python": self.models[0].source.python,
                }
            }
        )
        self._notification_readback()
        # The MWAA environment the trigger Lambda calls, answered by the local Airflow.
        self.aws.update_scenario({"mwaa": {"airflow_url": self.airflow.api_url, "auth": "none"}})
        with self.steps.step("sample data to the data bucket") as step:
            step.detail = self._upload_sample_data()

    def _notification_readback(self) -> None:
        """An SQS queue subscribed to the platform's alerts topic, and the Slack secret pointing at
        the local webhook sink."""
        sqs, sns = self.client(Actor.OPERATOR, "sqs"), self.client(Actor.OPERATOR, "sns")
        notifications = self.report.pipelines[0]["notifications"]
        self.queue_url = sqs.create_queue(QueueName="mlops-local-alerts-readback")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(TopicArn=notifications["sns_topic_arn"], Protocol="sqs", Endpoint=queue_arn)
        secrets = {p["notifications"].get("slack_webhook_secret_name") for p in self.report.pipelines} - {None}
        for secret in sorted(secrets):  # created out of band on AWS too (an operator stores the webhook URL)
            self.client(Actor.OPERATOR, "secretsmanager").create_secret(
                Name=secret, SecretString=json.dumps({"webhook_url": self.slack.url})
            )

    def _upload_sample_data(self) -> str:
        """Each model's sample data where the pipeline reads it: <data bucket>/<project>/<model>/training/."""
        from mlops_core import names

        s3 = self.client(Actor.OPERATOR, "s3")
        uploaded = []
        for model in self.models:
            data_uri = names.training_data_uri(model.config["data_bucket"], model.project, model.model)
            bucket, _, prefix = data_uri.removeprefix("s3://").partition("/")
            for channel_file in model.source.sample_files():
                key = f"{prefix.rstrip('/')}/{channel_file.parent.name}/{channel_file.name}"
                s3.upload_file(str(channel_file), bucket, key)
            uploaded.append(data_uri)
        return ", ".join(uploaded)

    def write_pipeline_configs(self) -> None:
        """What each ModelPipeline's BucketDeployment publishes: pipeline.json into the DAG bundle
        (the local DAG folder, and the Airflow bucket's dags/ prefix that MWAA syncs)."""
        from mlops_core import names
        from mlops_core.pipeline_config import PipelineConfig, dumps
        from mlops_core.platform_names import PlatformNames

        s3 = self.client(Actor.PROVISIONER, "s3")
        airflow_bucket = PlatformNames(
            environment="local", account=LOCAL_ACCOUNT, region=self.aws.region
        ).airflow_bucket
        for document in self.report.pipelines:
            config = PipelineConfig.model_validate(document)
            relative = names.pipeline_config_path(config.project, config.model)
            path = self.airflow.dags_folder / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(dumps(config))
            with contextlib.suppress(Exception):
                s3.put_object(Bucket=airflow_bucket, Key=f"dags/{relative}", Body=dumps(config).encode())

    def model(self, key: str | None = None) -> LocalModel:
        """The selected model ``<project>/<model>`` (the only one when ``key`` is None)."""
        if key is None:
            if len(self.models) != 1:
                raise ValueError(f"{len(self.models)} models run here; name one of {[m.key for m in self.models]}")
            return self.models[0]
        return next(m for m in self.models if m.key == key)

    # -- CI ------------------------------------------------------------------------------------
    def version_next(self, model: LocalModel, commit_message: str) -> dict[str, str]:
        """The MLOps pipeline's version and publish jobs as the project's CI role: `mlops version
        bump` from the commit, then `mlops image release` of the image the package job built (here an
        OCI archive of the model's repository, local_mode.image_archive)."""
        from local_mode.image_archive import write_archive

        env = {**os.environ, **self.identities.env(Actor.CI, project=model.project), "PYTHONPATH": str(REPO)}
        stem = f"{model.project}-{model.model}"
        bump_env, release_env, image = (
            self.state_dir / f"{name}-{stem}{suffix}"
            for name, suffix in (("bump", ".env"), ("release", ".env"), ("image", ".tar"))
        )
        write_archive(model.source.path, image)

        def mlops(*arguments: str) -> str:
            done = subprocess.run(  # noqa: S603
                [sys.executable, "-m", "mlops_cli", *arguments],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                cwd=REPO,
            )
            if done.returncode != 0:
                raise RuntimeError(f"mlops {' '.join(arguments[:2])} failed: {done.stdout}{done.stderr}")
            return done.stdout.strip()

        outputs = [mlops("version", "bump", "--commit-message", commit_message, "--output", str(bump_env))]
        bump = read_dotenv(bump_env)["VERSION_BUMP"]
        release = ("image", "release", "--project", model.project, "--model", model.model, "--image", str(image))
        outputs.append(mlops(*release, "--bump", bump, "--output", str(release_env)))
        values = read_dotenv(release_env)
        values["output"] = "\n".join(outputs)
        return values

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> dict[str, Any]:
        """What `mlops trigger` does in a CI job: a SigV4-signed request to the project's alias URL
        of the trigger Lambda, as the project's CI role (local Lambda runs the real handler as its
        role)."""
        from mlops_cli import dag_runs
        from mlops_cli.errors import CliError

        self._job_id += 1
        event = {
            "action": "trigger",
            "dag_id": dag_id,
            "pipeline_id": self._pipeline_id,
            "job_id": self._job_id,
            "conf": conf,
        }
        url = self.report.trigger_urls.get(conf["project"])
        if url is None:
            raise RuntimeError(f"the trigger Lambda has no alias for project {conf['project']!r}")
        try:
            with _environ(self.identities.env(Actor.CI, project=conf["project"])):
                return dag_runs.invoke(url, event)
        except CliError as refused:
            raise RuntimeError(f"trigger Lambda refused {dag_id}: {refused.message}") from None

    # -- Airflow -------------------------------------------------------------------------------
    def wait_run(self, dag_id: str, run_id: str, *, timeout: float = 600, on_tasks=None) -> RunOutcome:
        started = time.monotonic()
        deadline = started + timeout
        while True:
            run = self.airflow.dag_run(dag_id, run_id)
            tasks = {
                t["task_id"]: {
                    "state": t.get("state"),
                    "duration": t.get("duration"),
                    "start_date": t.get("start_date"),
                }
                for t in self.airflow.task_instances(dag_id, run_id)
            }
            if on_tasks:
                on_tasks(tasks)
            if run.get("state") in FINISHED:
                seconds = _run_seconds(run) or (time.monotonic() - started)
                return RunOutcome(dag_id, run_id, run["state"], seconds, tasks, run.get("conf") or {})
            for managed in self.processes.processes:
                if not managed.alive():
                    raise RuntimeError(f"{managed.name} exited (log {managed.log_path})")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{dag_id} run {run_id} still {run.get('state')} after {timeout:.0f} s")
            time.sleep(1)

    def training_run_ids(self) -> set[str]:
        from mlops_core import names

        return {r["dag_run_id"] for r in self.airflow.dag_runs(names.DAG_TRAINING)}

    def start_retraining(self) -> str:
        """Run the Retraining DAG as an operator does after new data arrived: a manual run with
        ``ignore_interval`` (the models were trained minutes ago, so tonight's scheduled run would
        skip them as not due). Returns the Retraining DAG's run id."""
        from mlops_core import names

        self.airflow.unpause(names.DAG_RETRAINING)
        run = self.airflow.request(
            "POST",
            f"/dags/{names.DAG_RETRAINING}/dagRuns",
            {"logical_date": datetime.now(UTC).isoformat(), "conf": {"ignore_interval": True}},
        )
        return run["dag_run_id"]

    def start_drift_check(self, model: LocalModel) -> str:
        """Run the Drift Check DAG for one model now, as an operator does (its hourly schedule
        would check it within the hour). Returns the run id."""
        from mlops_core import names

        self.airflow.unpause(names.DAG_DRIFT_CHECK)
        run = self.airflow.request(
            "POST",
            f"/dags/{names.DAG_DRIFT_CHECK}/dagRuns",
            {"logical_date": datetime.now(UTC).isoformat(), "conf": {"project": model.project, "model": model.model}},
        )
        return run["dag_run_id"]

    def drift_summary(self, model: LocalModel) -> dict[str, Any] | None:
        """The model's newest drift check summary (mlops_core.drift.DriftCheckSummary), if any."""
        from mlops_core import names

        s3 = self.client(Actor.OPERATOR, "s3")
        uri = names.drift_summary_uri(model.config["artifact_bucket"], model.project, model.model)
        bucket, key = uri.removeprefix("s3://").split("/", 1)
        try:
            return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except s3.exceptions.NoSuchKey:
            return None

    def alarm(self, name: str) -> dict[str, Any] | None:
        alarms = self.client(Actor.OPERATOR, "cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"]
        return alarms[0] if alarms else None

    def training_runs_since(self, known: set[str]) -> dict[str, str]:
        """``<project>/<model>`` -> run id of the Training & Evaluation runs not in ``known``."""
        from mlops_core import names

        runs = [r for r in self.airflow.dag_runs(names.DAG_TRAINING) if r["dag_run_id"] not in known]
        return {f"{r['conf'].get('project')}/{r['conf'].get('model')}": r["dag_run_id"] for r in runs}

    # -- reading results back --------------------------------------------------------------------
    def mark(self) -> InboxMark:
        """Where the notifications received so far end (SNS through SQS, Slack)."""
        self._drain_sns(wait_seconds=0)
        return InboxMark(len(self._sns), self.slack.count())

    def notifications(
        self, since: InboxMark, model: LocalModel, *, expect: int = 1, timeout: float = 20
    ) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
        """The SNS and Slack notifications about ``model`` since ``since``: at least ``expect`` of
        each, or what arrived within ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            self._drain_sns(wait_seconds=1)
            sns = [m for m in self._sns[since.sns :] if model.key in m["subject"] or model.key in m["message"]]
            slack = [p for p in self.slack.since(since.slack) if model.key in json.dumps(p)]
            if (len(sns) >= expect and len(slack) >= expect) or time.monotonic() > deadline:
                return sns, slack

    def _drain_sns(self, wait_seconds: int) -> None:
        sqs = self.client(Actor.OPERATOR, "sqs")
        while True:
            batch = sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
            ).get("Messages", [])
            if not batch:
                return
            for message in batch:
                envelope = json.loads(message["Body"])
                self._sns.append({"subject": envelope.get("Subject") or "", "message": envelope.get("Message", "")})
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def packages(self, model: LocalModel) -> list[dict[str, Any]]:
        from mlops_core import names

        sm = self.client(Actor.OPERATOR, "sagemaker")
        group = names.model_package_group_name(model.project, model.model)
        summaries = []
        try:
            for page in sm.get_paginator("list_model_packages").paginate(ModelPackageGroupName=group):
                summaries.extend(page["ModelPackageSummaryList"])
        except sm.exceptions.ClientError:
            return []
        return [sm.describe_model_package(ModelPackageName=s["ModelPackageArn"]) for s in summaries]

    def package_of_run(self, model: LocalModel, airflow_run_id: str) -> dict[str, Any] | None:
        for package in self.packages(model):
            if package.get("CustomerMetadataProperties", {}).get("airflow_run_id") == airflow_run_id:
                return package
        return None

    def endpoint(self, model: LocalModel) -> dict[str, Any] | None:
        sm = self.client(Actor.OPERATOR, "sagemaker")
        try:
            return sm.describe_endpoint(EndpointName=model.endpoint_name)
        except sm.exceptions.ClientError:
            return None

    def invoke_endpoint(self, model: LocalModel, body: str | None = None) -> tuple[dict[str, Any], float]:
        runtime = self.client(Actor.OPERATOR, "sagemaker-runtime")
        started = time.perf_counter()
        response = runtime.invoke_endpoint(
            EndpointName=model.endpoint_name,
            ContentType="text/csv",
            Accept="application/json",
            Body=(body or model.source.sample_records()).encode(),
        )
        document = json.loads(response["Body"].read())
        return document, time.perf_counter() - started

    def endpoint_access(self, model: LocalModel) -> EndpointAccess:
        """The commands a person copies to call the endpoint while local mode keeps running."""
        env = self.identities.env(Actor.OPERATOR)
        region = self.aws.region
        url = f"{self.aws.url}/endpoints/{model.endpoint_name}/invocations"
        record = model.source.sample_records(1).strip()
        curl = (
            f"curl -s --aws-sigv4 {shlex.quote(f'aws:amz:{region}:sagemaker')} "
            f"--user {shlex.quote(env['AWS_ACCESS_KEY_ID'] + ':' + env['AWS_SECRET_ACCESS_KEY'])} "
            f"-H 'Content-Type: text/csv' --data-binary {shlex.quote(record)} {url}"
        )
        code = (
            f"import boto3; print(boto3.client('sagemaker-runtime').invoke_endpoint(EndpointName="
            f"{model.endpoint_name!r}, ContentType='text/csv', Body={record!r})['Body'].read().decode())"
        )
        variables = " ".join(
            f"{key}={shlex.quote(env[key])}"
            for key in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
        )
        return EndpointAccess(
            url=url, curl=curl, boto3=f"{variables} {shlex.quote(sys.executable)} -c {shlex.quote(code)}"
        )


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


@contextlib.contextmanager
def _environ(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` in os.environ for the duration of an in-process call (the Lambda handler reads
    its configuration and boto3 its credentials from there)."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _run_seconds(run: dict[str, Any]) -> float | None:
    start, end = run.get("start_date"), run.get("end_date")
    if not start or not end:
        return None
    return (_parse_time(end) - _parse_time(start)).total_seconds()


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
