"""Integration harness: a local AWS (local_aws, a real server process), a Slack webhook sink (a
real HTTP server on 127.0.0.1), per-model platform resources, and running a DAG with dag.test().

Each test uses its own model name, so one local AWS serves the whole session without tests
seeing each other's jobs, endpoints, topics or Slack payloads.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from local_aws.roles import ensure_service_role
from mlops_core import names
from mlops_core.pipeline_config import PipelineConfig, dumps

ACCOUNT = "123456789012"
REGION = "us-east-1"
PROJECT = "itest"
DATA_BUCKET = "mlops-itest-data"
ARTIFACT_BUCKET = "mlops-itest-artifacts"
TEST_CSV = "cmdline_length,hour_of_day,label\n120,13,benign\n3400,2,malicious\n"


class SlackSink:
    """Records every request Slack would receive (each attempt, retries included); ``status`` per
    path simulates Slack errors, ``drop`` paths simulate Slack unreachable: the connection is
    closed without any answer, which the client sees as a connection error."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict]] = []
        self.status: dict[str, int] = {}
        self.drop: set[str] = set()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    sink.requests.append((self.path, json.loads(body)))
                except ValueError:  # e.g. a CSV invocation when the sink stands in for a model
                    sink.requests.append((self.path, body.decode(errors="replace")))
                if self.path in sink.drop:
                    self.close_connection = True  # no status line: http.client's RemoteDisconnected
                    return
                status = sink.status.get(self.path, 200)
                payload = b"ok" if status == 200 else b"internal_error"
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):  # keep test output readable
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> SlackSink:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def payloads(self, path: str) -> list[dict]:
        return [body for p, body in self.requests if p == path]


@dataclass
class ModelFixture:
    """One model's platform resources in the local AWS and its pipeline configuration."""

    model: str
    config: PipelineConfig
    queue_url: str
    slack_path: str
    boto: object = field(repr=False)

    @property
    def project(self) -> str:
        return self.config.project

    def sns_messages(self, wait_seconds: int = 1) -> list[dict]:
        """Every SNS notification so far, read back through the topic's SQS subscription."""
        sqs = self.boto.client("sqs")
        found = []
        while True:
            response = sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
            )
            batch = response.get("Messages", [])
            if not batch:
                return found
            for message in batch:
                envelope = json.loads(message["Body"])
                found.append({"subject": envelope.get("Subject"), "message": envelope["Message"]})
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def packages(self) -> list[dict]:
        sm = self.boto.client("sagemaker")
        try:
            summaries = sm.list_model_packages(
                ModelPackageGroupName=self.config.model_package_group_name, MaxResults=100
            )["ModelPackageSummaryList"]
        except sm.exceptions.ClientError:
            return []
        return [sm.describe_model_package(ModelPackageName=s["ModelPackageArn"]) for s in summaries]

    def serving(self) -> tuple[str, str] | None:
        """(status, endpoint config name) of the model's endpoint, None when there is none."""
        sm = self.boto.client("sagemaker")
        try:
            endpoint = sm.describe_endpoint(EndpointName=self.config.endpoint_name)
        except sm.exceptions.ClientError:
            return None
        return endpoint["EndpointStatus"], endpoint["EndpointConfigName"]


def write_pipeline_config(dags_folder: Path, config: PipelineConfig) -> None:
    path = dags_folder / names.pipeline_config_path(config.project, config.model)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(config))


def create_model_fixture(boto, dags_folder: Path, model: str, slack_url: str, **overrides) -> ModelFixture:
    """Data in the data bucket, an SNS topic read back through SQS, the Slack webhook secret, the
    role SageMaker assumes for the model's jobs and endpoint, and the pipeline configuration
    ModelPipeline would publish. These tests are of the DAGs' behaviour: the role may do everything
    (the synthesized policies are exercised by tests/e2e)."""
    s3, sns, sqs, secrets = (boto.client(s) for s in ("s3", "sns", "sqs", "secretsmanager"))
    sagemaker_role_arn = ensure_service_role(boto.client("iam"), "mlops-itest-sm")
    for bucket in (DATA_BUCKET, ARTIFACT_BUCKET):
        try:
            s3.create_bucket(Bucket=bucket)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
    prefix = names.training_data_uri(DATA_BUCKET, PROJECT, model).removeprefix(f"s3://{DATA_BUCKET}/")
    s3.put_object(Bucket=DATA_BUCKET, Key=f"{prefix}train/train.csv", Body=TEST_CSV.encode())
    s3.put_object(Bucket=DATA_BUCKET, Key=f"{prefix}test/test.csv", Body=TEST_CSV.encode())
    topic_arn = sns.create_topic(Name=f"alerts-{model}")["TopicArn"]
    queue_url = sqs.create_queue(QueueName=f"alerts-{model}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    slack_path = f"/hooks/{model}"
    secret_name = f"mlops/itest/slack-{model}"
    secrets.create_secret(Name=secret_name, SecretString=json.dumps({"webhook_url": slack_url + slack_path}))
    document = {
        "environment": "itest",
        "project": PROJECT,
        "model": model,
        "problem_type": "classification",
        "image_repository_uri": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{PROJECT}/{model}",
        "sagemaker_role_arn": sagemaker_role_arn,
        "data_bucket": DATA_BUCKET,
        "artifact_bucket": ARTIFACT_BUCKET,
        "gate": {"metric": "f1", "threshold": 0.8},
        "endpoint": {
            "rollback_alarm_names": [f"{model}-5xx"],
            "autoscaling": {"min_capacity": 1, "max_capacity": 3},
        },
        "notifications": {"sns_topic_arn": topic_arn, "slack_webhook_secret_name": secret_name},
    }
    for key, value in overrides.items():
        document[key] = value
    config = PipelineConfig.model_validate(document)
    write_pipeline_config(dags_folder, config)
    return ModelFixture(model=model, config=config, queue_url=queue_url, slack_path=slack_path, boto=boto)


@dataclass
class RunResult:
    state: str
    tasks: dict[str, str]
    dag_id: str
    run_id: str

    def returned(self, task_id: str):
        """What a task of this run returned (its return_value XCom), None if nothing."""
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session

        with create_session() as session:
            run = session.query(DagRun).filter(DagRun.dag_id == self.dag_id, DagRun.run_id == self.run_id).one()
            ti = run.get_task_instance(task_id, session=session)
            return ti.xcom_pull(task_ids=task_id, session=session)


def _state(value) -> str:
    return str(getattr(value, "value", value))


def run_dag(dag, conf: dict | None) -> RunResult:
    """Run one DAG run in this process with dag.test() and report its outcome."""
    import copy

    # dag.test() runs the tasks in this process, and the run's conf is merged into the DAG's and
    # the tasks' own Params (in place, harmless where each task runs in a process of its own): a
    # later run would inherit it.
    saved = [(owner, copy.deepcopy(owner.params)) for owner in (dag, *dag.tasks)]
    try:
        dag_run = dag.test(run_conf=conf) if conf is not None else dag.test()
    finally:
        for owner, params in saved:
            owner.params = params
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.dag_id == dag.dag_id, DagRun.run_id == dag_run.run_id).one()
        tasks = {
            ti.task_id + (f"[{ti.map_index}]" if ti.map_index >= 0 else ""): _state(ti.state)
            for ti in run.get_task_instances(session=session)
        }
        return RunResult(state=_state(run.state), tasks=tasks, dag_id=dag.dag_id, run_id=dag_run.run_id)


# What every integration test starts from (local_aws scenario): short SageMaker delays.
BASE_SCENARIO = {
    "training": {"delay_seconds": 1.5, "rules": []},
    "processing": {"delay_seconds": 1.0, "rules": []},
    "endpoints": {
        "create_delay_seconds": 1.5,
        "update_delay_seconds": 1.5,
        "fail_next_creates": 0,
        "fail_next_updates": 0,
        "rules": [],
    },
}


def evaluation(f1: float) -> dict:
    """A processing rule's files: an evaluation.json with this f1."""
    return {
        "evaluation.json": {
            "problem_type": "classification",
            "metrics": {"f1": f1, "precision": f1, "recall": f1, "accuracy": f1},
            "confusion_matrix": {"labels": ["benign", "malicious"], "matrix": [[40, 10], [5, 45]]},
        }
    }


def new_model(env, model: str, **overrides) -> ModelFixture:
    from conftest import DAGS_FOLDER

    return create_model_fixture(env["boto"], DAGS_FOLDER, model, env["slack"].url, **overrides)


def train(env, m, tag="1.0.0", **conf) -> RunResult:
    return run_dag(
        env["dags"][names.DAG_TRAINING],
        {"project": PROJECT, "model": m.model, "image_tag": tag, "source_commit": "abc1234", **conf},
    )


def deploy(env, m, version) -> RunResult:
    return run_dag(env["dags"][names.DAG_DEPLOYMENT], {"project": PROJECT, "model": m.model, "model_version": version})
