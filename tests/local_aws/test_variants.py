"""Endpoints with several production variants and a shadow variant, through real boto3 sagemaker,
sagemaker-runtime and cloudwatch clients, with IAM enforced.

Each test names the SageMaker behaviour it encodes (API reference: CreateEndpointConfig,
ProductionVariant, InvokeEndpoint, UpdateEndpointWeightsAndCapacities, DescribeEndpoint; developer
guide: "Testing models with shadow variants", "Metrics for monitoring Amazon SageMaker AI").
Every variant's model answers with its own environment (the EnvEcho runner), so a response names
the variant that produced it.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError, ParamValidationError
from local_aws_helpers import IMAGE, ROLE, wait_for

from local_aws import LocalAws
from local_aws.roles import ensure_service_role, trust_policy

pytestmark = pytest.mark.integration
HERE = Path(__file__).resolve().parent
PENDING = {"Creating", "Updating"}


@pytest.fixture(scope="module")
def echo_aws():
    with LocalAws(
        scenario={"endpoints": {"create_delay_seconds": 0.1, "update_delay_seconds": 0.1}},
        endpoint_runner="local_aws_test_runners:EnvEchoEndpointRunner",
        extra_env={"PYTHONPATH": str(HERE)},
    ) as aws:
        yield aws


@pytest.fixture
def clients(echo_aws, monkeypatch):
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    for key, value in echo_aws.env.items():
        monkeypatch.setenv(key, value)
    ensure_service_role(boto3.client("iam"), ROLE.rsplit("/", 1)[-1])
    return boto3.client("sagemaker"), boto3.client("sagemaker-runtime"), boto3.client("cloudwatch")


def model(sm, name: str, **environment: str) -> str:
    sm.create_model(
        ModelName=name,
        PrimaryContainer={"Image": IMAGE, "Environment": {"WHO": name, **environment}},
        ExecutionRoleArn=ROLE,
    )
    return name


def variant(name: str, model_name: str, weight: float = 1.0) -> dict:
    return {
        "VariantName": name,
        "ModelName": model_name,
        "InitialInstanceCount": 1,
        "InstanceType": "ml.t2.medium",
        "InitialVariantWeight": weight,
    }


def endpoint(sm, name: str, production: list[dict], shadows: list[dict] | None = None) -> dict:
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=production,
        **({"ShadowProductionVariants": shadows} if shadows else {}),
    )
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    return wait_for(lambda: sm.describe_endpoint(EndpointName=name), "EndpointStatus", PENDING)


def invoke(runtime, name: str, **extra) -> tuple[str, dict]:
    response = runtime.invoke_endpoint(EndpointName=name, Body=b"{}", ContentType="application/json", **extra)
    return response["InvokedProductionVariant"], json.loads(response["Body"].read())


def metric(cloudwatch, name: str, variant_name: str, metric_name: str, stat: str) -> float | None:
    """One GetMetricData value over the last hour, as the deployment DAG reads it."""
    now = datetime.now(UTC)
    result = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "m",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/SageMaker",
                        "MetricName": metric_name,
                        "Dimensions": [
                            {"Name": "EndpointName", "Value": name},
                            {"Name": "VariantName", "Value": variant_name},
                        ],
                    },
                    "Period": 3600,
                    "Stat": stat,
                },
            }
        ],
        StartTime=now - timedelta(minutes=30),
        EndTime=now + timedelta(minutes=30),
    )["MetricDataResults"][0]["Values"]
    return result[0] if result else None


def test_requests_are_routed_by_variant_weight_and_target_variant_is_honoured(clients, unique):
    """ProductionVariant.InitialVariantWeight: a variant gets weight / sum of weights of the traffic;
    InvokeEndpoint.TargetVariant overrides the weights; the response names the variant that served
    (x-Amzn-Invoked-Production-Variant, InvokedProductionVariant in boto3)."""
    sm, runtime, _ = clients
    name = unique("ab")
    described = endpoint(
        sm, name, [variant("A", model(sm, f"{name}-a"), 3.0), variant("B", model(sm, f"{name}-b"), 1.0)]
    )
    assert [(v["VariantName"], v["CurrentWeight"], v["DesiredWeight"]) for v in described["ProductionVariants"]] == [
        ("A", 3.0, 3.0),
        ("B", 1.0, 1.0),
    ]
    served = [invoke(runtime, name) for _ in range(400)]
    assert all(body["WHO"] == f"{name}-{v.lower()}" for v, body in served)  # the header tells the truth
    share_a = sum(v == "A" for v, _ in served) / len(served)
    assert 0.65 < share_a < 0.85  # 0.75 expected; 400 draws: > 4 standard deviations either side

    assert {invoke(runtime, name, TargetVariant="B")[0] for _ in range(20)} == {"B"}
    with pytest.raises(ClientError) as unknown:
        invoke(runtime, name, TargetVariant="C")
    assert unknown.value.response["Error"]["Code"] == "ValidationError"
    assert unknown.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_create_endpoint_config_refuses_what_sagemaker_refuses(clients, unique):
    """CreateEndpointConfig: with ShadowProductionVariants exactly one production and one shadow
    variant; at most 10 production variants; unique variant names; botocore itself refuses an
    empty list (min 1) and a negative weight (min 0)."""
    sm, _, _ = clients
    name = unique("bad")
    a, b, c = (model(sm, f"{name}-{x}") for x in "abc")

    def refused(**request) -> str:
        with pytest.raises(ClientError) as error:
            sm.create_endpoint_config(EndpointConfigName=unique("cfg"), **request)
        assert error.value.response["Error"]["Code"] == "ValidationException"
        return error.value.response["Error"]["Message"]

    assert "exactly one" in refused(
        ProductionVariants=[variant("A", a), variant("B", b)], ShadowProductionVariants=[variant("S", c)]
    )
    assert "exactly one" in refused(
        ProductionVariants=[variant("A", a)], ShadowProductionVariants=[variant("S", b), variant("T", c)]
    )
    assert "less than or equal to 10" in refused(ProductionVariants=[variant(f"V{i}", a) for i in range(11)])
    assert "unique" in refused(ProductionVariants=[variant("A", a)], ShadowProductionVariants=[variant("A", b)])
    assert "greater than 0" in refused(ProductionVariants=[variant("A", a, 0.0), variant("B", b, 0.0)])
    assert "Could not find model" in refused(
        ProductionVariants=[variant("A", a)], ShadowProductionVariants=[variant("S", "no-such-model")]
    )
    with pytest.raises(ParamValidationError):
        sm.create_endpoint_config(EndpointConfigName=unique("cfg"), ProductionVariants=[variant("A", a, -1.0)])
    sm.create_endpoint_config(  # one production and one shadow variant: accepted and described
        EndpointConfigName=f"{name}-ok",
        ProductionVariants=[variant("A", a)],
        ShadowProductionVariants=[variant("S", b)],
    )
    described = sm.describe_endpoint_config(EndpointConfigName=f"{name}-ok")
    assert [v["VariantName"] for v in described["ShadowProductionVariants"]] == ["S"]


def test_the_shadow_gets_a_copy_and_production_always_answers(clients, unique):
    """Shadow variants: production answers every request; the shadow receives a copy whose answer is
    never returned, even when the shadow fails. Both appear in DescribeEndpoint; each variant's
    metrics carry its own VariantName."""
    sm, runtime, cloudwatch = clients
    name = unique("shadow")
    described = endpoint(
        sm,
        name,
        [variant("Production", model(sm, f"{name}-prod"))],
        [variant("Shadow", model(sm, f"{name}-cand", ECHO_STATUS="500", ECHO_DELAY_MS="200"))],
    )
    assert [v["VariantName"] for v in described["ProductionVariants"]] == ["Production"]
    assert [(v["VariantName"], v["CurrentWeight"]) for v in described["ShadowProductionVariants"]] == [("Shadow", 1.0)]

    answers = [invoke(runtime, name) for _ in range(30)]
    assert {(v, body["WHO"]) for v, body in answers} == {("Production", f"{name}-prod")}
    with pytest.raises(ClientError) as targeted:  # a shadow variant is not a production variant
        invoke(runtime, name, TargetVariant="Shadow")
    assert targeted.value.response["Error"]["Code"] == "ValidationError"

    deadline = time.monotonic() + 30  # the copies run in the background
    while metric(cloudwatch, name, "Shadow", "Invocations", "Sum") != 30 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert metric(cloudwatch, name, "Production", "Invocations", "Sum") == 30
    assert metric(cloudwatch, name, "Shadow", "Invocations", "Sum") == 30
    assert metric(cloudwatch, name, "Production", "Invocation5XXErrors", "Sum") == 0
    assert metric(cloudwatch, name, "Shadow", "Invocation5XXErrors", "Average") == 1.0
    # The shadow's 200 ms never reach production's latency (microseconds; wide margin for a busy machine).
    assert metric(cloudwatch, name, "Shadow", "ModelLatency", "p50") >= 200_000
    assert metric(cloudwatch, name, "Production", "ModelLatency", "p99") < 200_000


def test_a_shadow_weighted_below_production_gets_that_share_of_copies(clients, unique):
    """The shadow's weight relative to production's is the sampled share of the copies."""
    sm, runtime, cloudwatch = clients
    name = unique("sampled")
    endpoint(
        sm,
        name,
        [variant("Production", model(sm, f"{name}-prod"), 1.0)],
        [variant("Shadow", model(sm, f"{name}-cand"), 0.25)],
    )
    for _ in range(400):
        invoke(runtime, name)
    time.sleep(1)
    copies = metric(cloudwatch, name, "Shadow", "Invocations", "Sum")
    assert 60 < copies < 140  # 100 expected


def test_per_variant_metrics_are_those_sagemaker_publishes(clients, unique):
    """AWS/SageMaker metrics with dimensions EndpointName + VariantName: Invocations (Sum),
    Invocation4XXErrors and Invocation5XXErrors (a model's 4xx/5xx answer), ModelLatency and
    OverheadLatency in microseconds; GetMetricStatistics reads them too."""
    sm, runtime, cloudwatch = clients
    name = unique("metrics")
    endpoint(
        sm,
        name,
        [variant("Good", model(sm, f"{name}-good")), variant("Picky", model(sm, f"{name}-picky", ECHO_STATUS="400"))],
    )
    for _ in range(5):
        invoke(runtime, name, TargetVariant="Good")
    for _ in range(3):
        with pytest.raises(ClientError) as error:
            invoke(runtime, name, TargetVariant="Picky")
        assert error.value.response["Error"]["Code"] == "ModelError"  # the model's 400, as SageMaker reports it
    assert metric(cloudwatch, name, "Picky", "Invocation4XXErrors", "Sum") == 3
    assert metric(cloudwatch, name, "Good", "Invocation4XXErrors", "Sum") == 0
    assert metric(cloudwatch, name, "Good", "Invocations", "Sum") == 5
    assert metric(cloudwatch, name, "Good", "OverheadLatency", "Maximum") > 0
    now = datetime.now(UTC)
    statistics = cloudwatch.get_metric_statistics(
        Namespace="AWS/SageMaker",
        MetricName="ModelLatency",
        Dimensions=[{"Name": "EndpointName", "Value": name}, {"Name": "VariantName", "Value": "Good"}],
        StartTime=now - timedelta(minutes=30),
        EndTime=now + timedelta(minutes=30),
        Period=3600,
        Statistics=["SampleCount", "Average"],
    )
    [point] = statistics["Datapoints"]
    assert point["SampleCount"] == 5 and point["Unit"] == "Microseconds" and point["Average"] > 0
    listed = cloudwatch.list_metrics(Namespace="AWS/SageMaker", Dimensions=[{"Name": "EndpointName", "Value": name}])
    assert {m["MetricName"] for m in listed["Metrics"]} >= {
        "Invocations",
        "Invocation4XXErrors",
        "Invocation5XXErrors",
        "ModelLatency",
        "OverheadLatency",
    }


def test_update_endpoint_weights_and_capacities_validates_then_shifts_traffic(clients, unique):
    """UpdateEndpointWeightsAndCapacities: only an InService endpoint, only its variants; the
    endpoint is Updating (DesiredWeight shows the new weight, CurrentWeight the old one) and then
    InService with the new weights, which route the requests from then on."""
    sm, runtime, _ = clients
    name = unique("shift")
    endpoint(sm, name, [variant("A", model(sm, f"{name}-a"), 1.0), variant("B", model(sm, f"{name}-b"), 0.0)])
    assert {invoke(runtime, name)[0] for _ in range(30)} == {"A"}  # weight 0: no traffic

    with pytest.raises(ClientError) as unknown:
        sm.update_endpoint_weights_and_capacities(
            EndpointName=name, DesiredWeightsAndCapacities=[{"VariantName": "C", "DesiredWeight": 1.0}]
        )
    assert "[C]" in unknown.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as all_zero:
        sm.update_endpoint_weights_and_capacities(
            EndpointName=name, DesiredWeightsAndCapacities=[{"VariantName": "A", "DesiredWeight": 0.0}]
        )
    assert "greater than 0" in all_zero.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as missing:
        sm.update_endpoint_weights_and_capacities(
            EndpointName=unique("nope"), DesiredWeightsAndCapacities=[{"VariantName": "A", "DesiredWeight": 1.0}]
        )
    assert "Could not find endpoint" in missing.value.response["Error"]["Message"]

    sm.update_endpoint_weights_and_capacities(
        EndpointName=name,
        DesiredWeightsAndCapacities=[
            {"VariantName": "A", "DesiredWeight": 0.0},
            {"VariantName": "B", "DesiredWeight": 2.0},
        ],
    )
    updating = sm.describe_endpoint(EndpointName=name)
    assert updating["EndpointStatus"] == "Updating"
    assert [(v["CurrentWeight"], v["DesiredWeight"]) for v in updating["ProductionVariants"]] == [
        (1.0, 0.0),
        (0.0, 2.0),
    ]
    with pytest.raises(ClientError) as in_progress:
        sm.update_endpoint_weights_and_capacities(
            EndpointName=name, DesiredWeightsAndCapacities=[{"VariantName": "A", "DesiredWeight": 1.0}]
        )
    assert "in-progress" in in_progress.value.response["Error"]["Message"]
    done = wait_for(lambda: sm.describe_endpoint(EndpointName=name), "EndpointStatus", PENDING)
    assert done["EndpointStatus"] == "InService"
    assert [(v["CurrentWeight"], v["DesiredWeight"]) for v in done["ProductionVariants"]] == [(0.0, 0.0), (2.0, 2.0)]
    assert {invoke(runtime, name)[0] for _ in range(30)} == {"B"}


def test_weight_updates_and_metric_reads_are_authorized_per_endpoint(clients, unique, echo_aws):
    """IAM: sagemaker:UpdateEndpointWeightsAndCapacities on the endpoint's ARN; reading the
    published metrics needs cloudwatch:GetMetricData (resource "*")."""
    sm, runtime, _ = clients
    iam = boto3.client("iam")
    mine, other = unique("mine"), unique("other")
    for name in (mine, other):
        endpoint(sm, name, [variant("A", model(sm, f"{name}-a")), variant("B", model(sm, f"{name}-b"))])
    invoke(runtime, mine)
    role = iam.create_role(
        RoleName=unique("shifter"), AssumeRolePolicyDocument=json.dumps(trust_policy("lambda.amazonaws.com"))
    )["Role"]
    statement = {
        "Effect": "Allow",
        "Action": "sagemaker:UpdateEndpointWeightsAndCapacities",
        "Resource": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{mine}",
    }
    iam.put_role_policy(
        RoleName=role["RoleName"],
        PolicyName="p",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
    )
    credentials = echo_aws.service_credentials(role["Arn"], "lambda.amazonaws.com")
    session = boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name="us-east-1",
    )
    desired = [{"VariantName": "A", "DesiredWeight": 2.0}]
    session.client("sagemaker").update_endpoint_weights_and_capacities(
        EndpointName=mine, DesiredWeightsAndCapacities=desired
    )
    with pytest.raises(ClientError) as denied:
        session.client("sagemaker").update_endpoint_weights_and_capacities(
            EndpointName=other, DesiredWeightsAndCapacities=desired
        )
    assert "sagemaker:UpdateEndpointWeightsAndCapacities" in denied.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as unread:
        metric(session.client("cloudwatch"), mine, "A", "Invocations", "Sum")
    assert "cloudwatch:GetMetricData" in unread.value.response["Error"]["Message"]


def test_without_containers_a_scenario_rule_sets_how_a_variant_answers(aws, sm, unique):
    """The simulated runner (no container): an endpoints rule with ``invoke`` gives the variants
    whose image matches a status and a delay, so a DAG test can deploy a deliberately worse shadow."""
    cloudwatch, runtime = boto3.client("cloudwatch"), boto3.client("sagemaker-runtime")
    aws.update_scenario({"endpoints": {"rules": [{"when": {"image_contains": ":9.9.9"}, "invoke": {"status": 500}}]}})
    name = unique("canned")
    sm.create_model(ModelName=f"{name}-prod", PrimaryContainer={"Image": IMAGE}, ExecutionRoleArn=ROLE)
    sm.create_model(
        ModelName=f"{name}-cand", PrimaryContainer={"Image": IMAGE.replace("1.2.3", "9.9.9")}, ExecutionRoleArn=ROLE
    )
    endpoint(sm, name, [variant("Production", f"{name}-prod")], [variant("Shadow", f"{name}-cand")])
    for _ in range(10):
        assert invoke(runtime, name) == ("Production", {"predictions": [0]})
    deadline = time.monotonic() + 10
    while metric(cloudwatch, name, "Shadow", "Invocations", "Sum") != 10 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert metric(cloudwatch, name, "Shadow", "Invocation5XXErrors", "Sum") == 10
    assert metric(cloudwatch, name, "Production", "Invocation5XXErrors", "Sum") == 0
    with pytest.raises(Exception, match="invoke must be an object with keys among"):
        aws.update_scenario({"endpoints": {"rules": [{"when": {}, "invoke": {"code": 500}}]}})


def test_a_rule_in_front_of_a_container_makes_a_real_model_s_variant_fail(clients, unique, echo_aws):
    """A fault put in front of a real container (``in_front_of_container``): the variant whose image
    matches answers the rule's status without its model being called; a rule without it leaves
    container variants alone (it only sets how a variant without a container answers)."""
    sm, runtime, _ = clients
    name = unique("in-front")
    bad_image = IMAGE.replace("1.2.3", "9.9.8")
    sm.create_model(
        ModelName=f"{name}-bad",
        PrimaryContainer={"Image": bad_image, "Environment": {"WHO": "bad"}},
        ExecutionRoleArn=ROLE,
    )
    endpoint(sm, name, [variant("Good", model(sm, f"{name}-good")), variant("Bad", f"{name}-bad")])
    rule = {"when": {"image_contains": ":9.9.8"}, "invoke": {"status": 500}}
    echo_aws.update_scenario({"endpoints": {"rules": [rule]}})
    assert invoke(runtime, name, TargetVariant="Bad") == ("Bad", {"WHO": "bad"})  # a container: not applied
    echo_aws.update_scenario(
        {"endpoints": {"rules": [{**rule, "invoke": {"status": 500, "in_front_of_container": True}}]}}
    )
    try:
        with pytest.raises(ClientError, match="injected by the local AWS scenario") as failed:
            invoke(runtime, name, TargetVariant="Bad")
        assert failed.value.response["OriginalStatusCode"] == 500
        assert invoke(runtime, name, TargetVariant="Good")[1]["WHO"] == f"{name}-good"
    finally:
        echo_aws.update_scenario({"endpoints": {"rules": []}})


def test_data_capture_records_the_shadow_variants_answers_under_its_own_name(clients, unique, echo_aws):
    """Data capture on an endpoint with a shadow variant: the shadow's answers to the copied requests
    are captured under the shadow variant's name, beside production's (what a comparison of their
    predictions reads), and never returned to the caller. InvokeEndpoint's InferenceId "is added to
    the captured data" (API reference): production's record and the shadow's copy both carry it."""
    sm, runtime, _ = clients
    echo_aws.update_scenario({"data_capture": {"flush_every_records": 1}})
    s3 = boto3.client("s3")
    name, bucket = unique("shadow-capture"), unique("captures")
    s3.create_bucket(Bucket=bucket)
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[variant("Production", model(sm, f"{name}-prod"))],
        ShadowProductionVariants=[variant("Shadow", model(sm, f"{name}-cand"))],
        DataCaptureConfig={
            "EnableCapture": True,
            "InitialSamplingPercentage": 100,
            "DestinationS3Uri": f"s3://{bucket}/captures",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]},
        },
    )
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    wait_for(lambda: sm.describe_endpoint(EndpointName=name), "EndpointStatus", PENDING)
    for request in range(3):
        assert invoke(runtime, name, InferenceId=f"request-{request}")[1]["WHO"] == f"{name}-prod"

    def answers_by_variant() -> dict[str, list[tuple[str, str]]]:
        found: dict[str, list[tuple[str, str]]] = {}
        for item in s3.list_objects_v2(Bucket=bucket, Prefix=f"captures/{name}/").get("Contents", []):
            variant_name = item["Key"].split("/")[2]
            for line in s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode().splitlines():
                record = json.loads(line)
                answer = json.loads(record["captureData"]["endpointOutput"]["data"])
                found.setdefault(variant_name, []).append((record["eventMetadata"]["inferenceId"], answer["WHO"]))
        return {variant_name: sorted(answers) for variant_name, answers in found.items()}

    deadline = time.monotonic() + 15  # shadow copies and their captures are written in the background
    while sum(map(len, answers_by_variant().values())) < 6 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert answers_by_variant() == {
        "Production": [(f"request-{i}", f"{name}-prod") for i in range(3)],
        "Shadow": [(f"request-{i}", f"{name}-cand") for i in range(3)],
    }


def test_the_per_variant_metric_store_keeps_the_latest_invocations_only():
    """Bounded memory (local AWS's own limit, not CloudWatch's): the oldest invocations' data points
    leave first, those not read yet included."""
    from local_aws.sagemaker.endpoint_metrics import EndpointMetrics

    metrics = EndpointMetrics(max_invocations=3)
    for status in (500, 500, 200, 200, 200):  # the two errors are the oldest
        metrics.record("us-east-1", "ep", "AllTraffic", model_us=1.0, overhead_us=1.0, status=status)
    data = metrics.data("us-east-1")
    assert sum(d.value for d in data if d.name == "Invocations") == 3
    assert sum(d.value for d in data if d.name == "Invocation5XXErrors") == 0
    for _ in range(2):
        metrics.record("us-east-1", "ep", "AllTraffic", model_us=1.0, overhead_us=1.0, status=500)
    data = metrics.data("us-east-1")
    assert len(data) == 3 * 5 and sum(d.value for d in data if d.name == "Invocation5XXErrors") == 2
