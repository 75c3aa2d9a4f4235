"""The local platform: local AWS, the CDK app's ``local`` environment inside it, a real Airflow 3,
the Slack sink, and the calls CI and people make (the ``mlops`` tool, the trigger Lambda's handler,
``sagemaker-runtime``). Everything binds 127.0.0.1; ``stop()`` ends every process it started.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_mode.airflow import FINISHED, LocalAirflow
from local_mode.cdk_env import ProvisionReport, provision, synthesize
from local_mode.identities import Identities, credentials_env, write_credentials_file
from local_mode.processes import ProcessGroup
from local_mode.slack_sink import SlackSink

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "model_template"
RUNNERS = "local_aws.sagemaker.process_runners"
# The local SageMaker's own delays are short: the real work (train, evaluate, serve start-up) takes
# what it takes.
SCENARIO = {
    "training": {"delay_seconds": 0.5},
    "processing": {"delay_seconds": 0.5},
    "endpoints": {"create_delay_seconds": 0.5, "update_delay_seconds": 0.5},
    "runner": {"serve_workers": 1},
}
BOOT_JOIN_SECONDS = 15.0  # stop(): how long the Airflow start-up thread may take to give up


@dataclass
class RunOutcome:
    dag_id: str
    run_id: str
    state: str
    seconds: float
    tasks: dict[str, dict[str, Any]]  # task_id -> {"state", "duration"}


class LocalPlatform:
    def __init__(
        self,
        *,
        state_dir: Path,
        say: Callable[[str], None] = print,
        airflow_venv: Path | None = None,
        model_source: Path = TEMPLATE,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.log_dir = self.state_dir / "logs"
        self.say = say
        self.model_source = model_source
        self.processes = ProcessGroup(self.log_dir)
        self.aws = None
        self.airflow = LocalAirflow(home=self.state_dir / "airflow", processes=self.processes, aws_env={})
        if airflow_venv:
            self.airflow.venv = airflow_venv
        self.slack = SlackSink()
        self.report: ProvisionReport | None = None
        self.config: dict[str, Any] | None = None
        self.queue_url: str | None = None
        self.trigger_env: dict[str, str] = {}
        self._saved_env: dict[str, str | None] = {}
        self._pipeline_id = int(time.time()) % 10**7
        self._job_id = 0
        self.timings: dict[str, float] = {}
        self._booting: threading.Thread | None = None
        self.identities: Identities | None = None
        self.ci = None  # CiIdentity: the GitLab instance and MLOps project the CI roles trust
        self.authorization: dict[str, Any] | None = None  # local AWS's authorization log, at stop
        # DAG tasks read the MWAA execution role's session from here (written once provisioned).
        self.mwaa_credentials_file = self.state_dir / "mwaa-execution-role.credentials"

    # -- start / stop --------------------------------------------------------------------------
    def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.airflow.prepare()
        started = time.monotonic()
        self._start_aws()
        self.timings["local AWS up"] = time.monotonic() - started
        # Airflow's tasks run as the MWAA execution role: no keys of the account in their
        # environment, the role's session from a credentials file written once it exists.
        self.airflow.aws_env = {
            **{k: v for k, v in self.aws.env.items() if not k.startswith(("AWS_ACCESS", "AWS_SECRET", "AWS_SESSION"))},
            "AWS_SHARED_CREDENTIALS_FILE": str(self.mwaa_credentials_file),
        }
        airflow_error: list[BaseException] = []

        def start_airflow() -> None:
            try:
                self.airflow.migrate()
                self.airflow.start()
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                airflow_error.append(exc)

        # Airflow migrates its database (~15 s) and starts (~30 s of imports) while the app
        # synthesizes and its resources are created: DAG parsing needs neither.
        # stop() requests the stop of every process, then joins this thread: once a stop is requested
        # the process group starts nothing more, so Airflow cannot come up after the stop.
        self._booting = threading.Thread(target=start_airflow, name="airflow-start", daemon=True)
        self._booting.start()
        step = time.monotonic()
        self._provision()
        self.timings["CDK synth + provision"] = time.monotonic() - step
        step = time.monotonic()
        self._booting.join()
        if airflow_error:
            raise airflow_error[0]
        self.write_pipeline_configs()
        from mlops_core import names

        self.airflow.wait_ready([names.DAG_TRAINING, names.DAG_DEPLOYMENT, names.DAG_RETRAINING])
        for dag_id in (names.DAG_TRAINING, names.DAG_DEPLOYMENT):
            self.airflow.unpause(dag_id)
        self.timings["Airflow 3 up (after provisioning)"] = time.monotonic() - step
        self.timings["start-up total"] = time.monotonic() - started

    def _start_aws(self) -> None:
        from local_aws import LocalAws

        self.aws = LocalAws(
            state_dir=self.state_dir / "local-aws",
            scenario={**SCENARIO, "runner": {**SCENARIO["runner"], "default_model_source": str(self.model_source)}},
            job_runner=f"{RUNNERS}:ProcessJobRunner",
            endpoint_runner=f"{RUNNERS}:ProcessEndpointRunner",
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
    @property
    def session(self):
        """The account's own session: provisioning, and the demo reading results."""
        import boto3

        return boto3.session.Session(
            region_name=self.aws.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - local AWS's account credentials
        )

    def _provision(self) -> None:
        synth = synthesize("local")
        self.say(f"synthesized {len(synth.stacks)} stacks of the 'local' environment in {synth.seconds:.1f} s")
        self.report = provision(synth, self.session)
        self.ci = synth.ci
        self.identities = Identities(self.aws, account=synth.account, region=synth.region)
        if not self.report.mwaa_execution_role_arn:
            raise RuntimeError("the synthesized local environment has no MWAA environment (its execution role)")
        write_credentials_file(
            self.mwaa_credentials_file,
            self.identities.mwaa_tasks(self.report.mwaa_execution_role_arn, self.report.mwaa_environment_name),
        )
        if len(self.report.pipelines) != 1:
            raise RuntimeError(
                f"expected one ModelPipeline in the local environment, found {len(self.report.pipelines)}"
            )
        self.config = self.report.pipelines[0]
        # The trigger Lambda's environment exactly as the app defines it (DagTrigger construct).
        if not self.report.trigger_env:
            raise RuntimeError("the synthesized local environment has no trigger Lambda (DagTrigger construct)")
        self.trigger_env = self.report.trigger_env
        sns, sqs, secrets, s3 = (self.session.client(s) for s in ("sns", "sqs", "secretsmanager", "s3"))
        # Notifications read back: an SQS queue subscribed to the platform's alerts topic.
        topic = self.config["notifications"]["sns_topic_arn"]
        self.queue_url = sqs.create_queue(QueueName="mlops-local-alerts-readback")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        secret = self.config["notifications"].get("slack_webhook_secret_name")
        if secret:  # created out of band on AWS too (an operator stores the real webhook URL)
            secrets.create_secret(Name=secret, SecretString=json.dumps({"webhook_url": self.slack.url}))
        # The MWAA environment the trigger Lambda calls, answered by the local Airflow.
        self.aws.update_scenario({"mwaa": {"airflow_url": self.airflow.api_url, "auth": "none"}})
        # The model's training data where the pipeline reads it: <data bucket>/<project>/<model>/training/.
        from mlops_core import names as core_names

        data_uri = core_names.training_data_uri(
            self.config["data_bucket"], self.config["project"], self.config["model"]
        )
        bucket, _, prefix = data_uri.removeprefix("s3://").partition("/")
        for channel_file in sorted((self.model_source / "data").glob("*/*.csv")):
            key = f"{prefix.rstrip('/')}/{channel_file.parent.name}/{channel_file.name}"
            s3.upload_file(str(channel_file), bucket, key)
        self.say(f"provisioned {len(self.report.created)} resources; training data in {data_uri}")

    def write_pipeline_configs(self) -> None:
        """What each ModelPipeline's BucketDeployment publishes: pipeline.json into the DAG bundle
        (the local DAG folder, and the Airflow bucket's dags/ prefix that MWAA syncs)."""
        from mlops_core import names
        from mlops_core.pipeline_config import PipelineConfig, dumps

        s3 = self.session.client("s3")
        from mlops_core.platform_names import PlatformNames

        airflow_bucket = PlatformNames(
            environment="local", account="123456789012", region=self.aws.region
        ).airflow_bucket
        for document in self.report.pipelines:
            config = PipelineConfig.model_validate(document)
            relative = names.pipeline_config_path(config.project, config.model)
            path = self.airflow.dags_folder / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(dumps(config))
            with contextlib.suppress(Exception):
                s3.put_object(Bucket=airflow_bucket, Key=f"dags/{relative}", Body=dumps(config).encode())

    # -- CI ------------------------------------------------------------------------------------
    @property
    def report_account(self) -> str:
        return self.config["sagemaker_role_arn"].split(":")[4]

    def ci_credentials(self, project: str) -> dict[str, str]:
        """The project's CI role, as a job on its release branch for this environment gets it."""
        from mlops_constructs.ci_access import model_project_role_name
        from mlops_core.names import ci_release_branch

        environment = self.config["environment"]
        role = f"arn:aws:iam::{self.report_account}:role/{model_project_role_name(environment, project)}"
        return self.identities.ci(role, self.ci, ci_release_branch(environment, project))

    def version_next(self, commit_message: str) -> dict[str, str]:
        """The MLOps pipeline's version and publish jobs: `mlops version bump` from the commit, then
        `mlops image release` of the image the package job built (here an OCI archive of the
        model source, local_mode.image_archive), as the project's CI role."""
        from local_mode.image_archive import write_archive

        project = self.config["project"]
        env = {**os.environ, **credentials_env(self.ci_credentials(project)), "PYTHONPATH": str(REPO)}
        bump_env, release_env, image = (self.state_dir / n for n in ("bump.env", "release.env", "image.tar"))
        write_archive(self.model_source, image)

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
        bump = _dotenv(bump_env)["VERSION_BUMP"]
        outputs.append(
            mlops(
                "image",
                "release",
                "--project",
                project,
                "--model",
                self.config["model"],
                "--image",
                str(image),
                "--bump",
                bump,
                "--output",
                str(release_env),
            )
        )
        values = _dotenv(release_env)
        values["output"] = "\n".join(outputs)
        return values

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> dict[str, Any]:
        """What `mlops trigger` does in a CI job: a SigV4-signed request to the project's alias URL
        of the trigger Lambda, as the project's CI role (local Lambda runs the real handler)."""
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
            with _environment(credentials_env(self.ci_credentials(conf["project"]))):
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
                t["task_id"]: {"state": t.get("state"), "duration": t.get("duration")}
                for t in self.airflow.task_instances(dag_id, run_id)
            }
            if on_tasks:
                on_tasks(tasks)
            if run.get("state") in FINISHED:
                seconds = _run_seconds(run) or (time.monotonic() - started)
                return RunOutcome(dag_id, run_id, run["state"], seconds, tasks)
            for managed in self.processes.processes:
                if not managed.alive():
                    raise RuntimeError(f"{managed.name} exited (log {managed.log_path})")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{dag_id} run {run_id} still {run.get('state')} after {timeout:.0f} s")
            time.sleep(1)

    def start_retraining(self, timeout: float = 60) -> str:
        """Run the Retraining DAG as an operator does after new data arrived: a manual run with
        ``ignore_interval`` (the model was trained minutes ago, so tonight's scheduled run would
        skip it as not due). Returns the run id of the training run it starts."""
        from datetime import UTC, datetime

        from mlops_core import names

        known = {r["dag_run_id"] for r in self.airflow.dag_runs(names.DAG_TRAINING)}
        self.airflow.unpause(names.DAG_RETRAINING)
        self.airflow.request(
            "POST",
            f"/dags/{names.DAG_RETRAINING}/dagRuns",
            {"logical_date": datetime.now(UTC).isoformat(), "conf": {"ignore_interval": True}},
        )
        deadline = time.monotonic() + timeout
        while True:
            for run in self.airflow.dag_runs(names.DAG_TRAINING):
                if run["dag_run_id"] not in known:
                    return run["dag_run_id"]
            if time.monotonic() > deadline:
                raise TimeoutError("the Retraining DAG started no training run")
            time.sleep(1)

    # -- reading results back --------------------------------------------------------------------
    def sns_messages(self, wait_seconds: int = 1) -> list[dict[str, str]]:
        sqs = self.session.client("sqs")
        found = []
        while True:
            batch = sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
            ).get("Messages", [])
            if not batch:
                return found
            for message in batch:
                envelope = json.loads(message["Body"])
                found.append({"subject": envelope.get("Subject") or "", "message": envelope.get("Message", "")})
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def packages(self) -> list[dict[str, Any]]:
        from mlops_core import names

        sm = self.session.client("sagemaker")
        group = names.model_package_group_name(self.config["project"], self.config["model"])
        summaries = []
        try:
            for page in sm.get_paginator("list_model_packages").paginate(ModelPackageGroupName=group):
                summaries.extend(page["ModelPackageSummaryList"])
        except sm.exceptions.ClientError:
            return []
        return [sm.describe_model_package(ModelPackageName=s["ModelPackageArn"]) for s in summaries]

    def package_of_run(self, airflow_run_id: str) -> dict[str, Any] | None:
        for package in self.packages():
            if package.get("CustomerMetadataProperties", {}).get("airflow_run_id") == airflow_run_id:
                return package
        return None

    def endpoint(self) -> dict[str, Any] | None:
        from mlops_core import names

        sm = self.session.client("sagemaker")
        try:
            return sm.describe_endpoint(EndpointName=names.endpoint_name(self.config["project"], self.config["model"]))
        except sm.exceptions.ClientError:
            return None

    def sample_records(self, count: int = 2) -> str:
        rows = list(csv.reader(io.StringIO((self.model_source / "data" / "test" / "test.csv").read_text())))
        header, body = rows[0], rows[1 : 1 + count]
        label = header.index("label") if "label" in header else len(header) - 1
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        for row in body:
            writer.writerow([v for i, v in enumerate(row) if i != label])
        return out.getvalue()

    def invoke_endpoint(self, body: str | None = None) -> tuple[dict[str, Any], float]:
        from mlops_core import names

        runtime = self.session.client("sagemaker-runtime")
        started = time.perf_counter()
        response = runtime.invoke_endpoint(
            EndpointName=names.endpoint_name(self.config["project"], self.config["model"]),
            ContentType="text/csv",
            Accept="application/json",
            Body=(body or self.sample_records()).encode(),
        )
        document = json.loads(response["Body"].read())
        return document, time.perf_counter() - started


@contextlib.contextmanager
def _environment(values: dict[str, str]):
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


def _dotenv(path: Path) -> dict[str, str]:
    from mlops_cli.dotenv import read_dotenv

    return read_dotenv(path)


def _run_seconds(run: dict[str, Any]) -> float | None:
    from datetime import datetime

    start, end = run.get("start_date"), run.get("end_date")
    if not start or not end:
        return None
    parse = lambda text: datetime.fromisoformat(text.replace("Z", "+00:00"))  # noqa: E731
    return (parse(end) - parse(start)).total_seconds()
