"""Endpoints: Creating/Updating/RollingBack/InService/Failed, duplicate rejection, rollback, invoke."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from botocore.exceptions import ClientError, WaiterError
from local_aws_helpers import IMAGE, ROLE, make_config, make_model, wait_for

pytestmark = pytest.mark.integration
PENDING = {"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"}  # Airflow's set


@pytest.fixture
def deployed(sm, unique):
    """An InService endpoint on config v1, and a second config v2 ready for an update."""
    name = unique("ep")
    for version in ("v1", "v2"):
        make_model(sm, f"{name}-{version}", image=IMAGE.replace("1.2.3", "1.2.3" if version == "v1" else "1.3.0"))
        make_config(sm, f"{name}-{version}", f"{name}-{version}")
    sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-v1")
    wait_for(lambda: sm.describe_endpoint(EndpointName=name), "EndpointStatus", PENDING)
    return name


def statuses(aws, name):
    return [e["status"] for e in aws.events() if e["kind"] == "Endpoint" and e["name"] == name]


def test_create_goes_creating_then_in_service_with_variants(sm, unique, aws):
    name = unique("ep-create")
    make_model(sm, name)
    make_config(sm, name, name)
    arn = sm.create_endpoint(EndpointName=name, EndpointConfigName=name)["EndpointArn"]
    creating = sm.describe_endpoint(EndpointName=name)
    assert creating["EndpointStatus"] == "Creating"
    assert creating["PendingDeploymentSummary"]["EndpointConfigName"] == name
    assert "ProductionVariants" not in creating

    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 10})
    ready = sm.describe_endpoint(EndpointName=name)
    assert ready["EndpointArn"] == arn == f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{name}"
    assert ready["EndpointStatus"] == "InService"
    assert ready["EndpointConfigName"] == name
    variant = ready["ProductionVariants"][0]
    assert variant["VariantName"] == "AllTraffic"
    assert variant["DeployedImages"][0]["SpecifiedImage"] == IMAGE
    assert variant["CurrentInstanceCount"] == 1
    assert ready["CreationTime"] <= ready["LastModifiedTime"]
    assert "FailureReason" not in ready and "PendingDeploymentSummary" not in ready
    assert statuses(aws, name) == ["Creating", "InService"]


def test_duplicate_create_is_rejected_like_aws_and_keeps_the_endpoint(sm, deployed):
    with pytest.raises(ClientError) as error:
        sm.create_endpoint(EndpointName=deployed, EndpointConfigName=f"{deployed}-v2")
    assert error.value.response["Error"]["Code"] == "ValidationException"
    # Airflow's SageMakerEndpointOperator switches to update on exactly this prefix.
    assert error.value.response["Error"]["Message"].startswith("Cannot create already existing endpoint")
    described = sm.describe_endpoint(EndpointName=deployed)
    assert described["EndpointConfigName"] == f"{deployed}-v1"
    assert described["EndpointStatus"] == "InService"


def test_create_with_unknown_config_is_rejected(sm, unique):
    with pytest.raises(ClientError) as error:
        sm.create_endpoint(EndpointName=unique("ep-noconf"), EndpointConfigName="does-not-exist")
    assert error.value.response["Error"]["Code"] == "ValidationException"
    assert "Could not find endpoint configuration" in error.value.response["Error"]["Message"]


def test_config_with_unknown_model_is_rejected(sm, unique):
    with pytest.raises(ClientError) as error:
        make_config(sm, unique("conf"), "missing-model")
    assert 'Could not find model "arn:aws:sagemaker:us-east-1:123456789012:model/missing-model"' in str(error.value)


def test_failed_create_ends_failed_and_the_waiter_reports_it(sm, unique, aws):
    aws.update_scenario({"endpoints": {"fail_next_creates": 1}})
    name = unique("ep-fail")
    make_model(sm, name)
    make_config(sm, name, name)
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    with pytest.raises(WaiterError):
        sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 10})
    failed = sm.describe_endpoint(EndpointName=name)
    assert failed["EndpointStatus"] == "Failed"
    assert "did not pass the ping health check" in failed["FailureReason"]
    assert aws.scenario()["endpoints"]["fail_next_creates"] == 0  # the counter was consumed


def test_update_goes_updating_then_in_service_on_the_new_config(sm, deployed, aws):
    sm.update_endpoint(EndpointName=deployed, EndpointConfigName=f"{deployed}-v2")
    updating = sm.describe_endpoint(EndpointName=deployed)
    assert updating["EndpointStatus"] == "Updating"
    assert updating["EndpointConfigName"] == f"{deployed}-v1"  # still serving v1 while updating
    assert updating["PendingDeploymentSummary"]["EndpointConfigName"] == f"{deployed}-v2"

    with pytest.raises(ClientError) as error:
        sm.update_endpoint(EndpointName=deployed, EndpointConfigName=f"{deployed}-v1")
    assert error.value.response["Error"]["Message"].startswith("Cannot update in-progress endpoint")

    done = wait_for(lambda: sm.describe_endpoint(EndpointName=deployed), "EndpointStatus", PENDING)
    assert done["EndpointStatus"] == "InService"
    assert done["EndpointConfigName"] == f"{deployed}-v2"
    assert done["ProductionVariants"][0]["DeployedImages"][0]["SpecifiedImage"].endswith(":1.3.0")
    assert statuses(aws, deployed) == ["Creating", "InService", "Updating", "InService"]


def test_failed_update_rolls_back_to_the_old_config(sm, deployed, aws):
    aws.update_scenario({"endpoints": {"fail_next_updates": 1}})
    sm.update_endpoint(EndpointName=deployed, EndpointConfigName=f"{deployed}-v2")
    # The waiter Airflow uses succeeds: the status alone does not reveal the failed update, as on AWS.
    sm.get_waiter("endpoint_in_service").wait(EndpointName=deployed, WaiterConfig={"Delay": 1, "MaxAttempts": 10})
    after = sm.describe_endpoint(EndpointName=deployed)
    assert after["EndpointStatus"] == "InService"
    assert after["EndpointConfigName"] == f"{deployed}-v1"
    assert after["ProductionVariants"][0]["DeployedImages"][0]["SpecifiedImage"] == IMAGE
    assert "did not pass the ping health check" in after["FailureReason"]
    assert statuses(aws, deployed) == ["Creating", "InService", "Updating", "RollingBack", "InService"]

    # The next update (counter consumed) succeeds and clears FailureReason.
    sm.update_endpoint(EndpointName=deployed, EndpointConfigName=f"{deployed}-v2")
    done = wait_for(lambda: sm.describe_endpoint(EndpointName=deployed), "EndpointStatus", PENDING)
    assert done["EndpointConfigName"] == f"{deployed}-v2"
    assert "FailureReason" not in done


def test_rule_fails_updates_to_matching_configs_only(sm, deployed, aws):
    aws.update_scenario({"endpoints": {"rules": [{"when": {"image_contains": ":1.3.0"}, "fail": "bad image"}]}})
    sm.update_endpoint(EndpointName=deployed, EndpointConfigName=f"{deployed}-v2")
    after = wait_for(lambda: sm.describe_endpoint(EndpointName=deployed), "EndpointStatus", PENDING)
    assert (after["EndpointConfigName"], after["FailureReason"]) == (f"{deployed}-v1", "bad image")


def test_alarm_in_alarm_state_rolls_back_a_guarded_update(sm, deployed, unique):
    cloudwatch = boto3.client("cloudwatch")
    alarm = unique("errors")
    cloudwatch.put_metric_alarm(
        AlarmName=alarm,
        Namespace="AWS/SageMaker",
        MetricName="Invocation5XXErrors",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="test")
    sm.update_endpoint(
        EndpointName=deployed,
        EndpointConfigName=f"{deployed}-v2",
        DeploymentConfig={
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0},
                "TerminationWaitInSeconds": 0,
            },
            "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": alarm}]},
        },
    )
    after = wait_for(lambda: sm.describe_endpoint(EndpointName=deployed), "EndpointStatus", PENDING)
    assert after["EndpointConfigName"] == f"{deployed}-v1"
    assert alarm in after["FailureReason"]


def test_delete_endpoint(sm, deployed):
    sm.delete_endpoint(EndpointName=deployed)
    with pytest.raises(ClientError) as error:
        sm.describe_endpoint(EndpointName=deployed)
    assert error.value.response["Error"]["Code"] == "ValidationException"
    sm.get_waiter("endpoint_deleted").wait(EndpointName=deployed, WaiterConfig={"Delay": 1, "MaxAttempts": 2})


class _Model(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if b"explode" in body:
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b"model exploded")
            return
        payload = json.dumps({"echo": json.loads(body), "content_type": self.headers["Content-Type"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def model_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Model)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_invoke_endpoint_answers_the_canned_response_by_default(deployed, aws):
    runtime = boto3.client("sagemaker-runtime")
    response = runtime.invoke_endpoint(
        EndpointName=deployed, Body=b'{"instances": [[1]]}', ContentType="application/json"
    )
    assert json.loads(response["Body"].read()) == {"predictions": [0]}
    assert response["InvokedProductionVariant"] == "AllTraffic"


def test_invoke_endpoint_forwards_to_a_configured_url(deployed, aws, model_server):
    aws.update_scenario({"endpoints": {"invoke": {"url": model_server}}})
    runtime = boto3.client("sagemaker-runtime")
    response = runtime.invoke_endpoint(EndpointName=deployed, Body=b'{"x": [1, 2]}', ContentType="application/json")
    assert json.loads(response["Body"].read()) == {"echo": {"x": [1, 2]}, "content_type": "application/json"}

    with pytest.raises(ClientError) as error:
        runtime.invoke_endpoint(EndpointName=deployed, Body=b'"explode"', ContentType="application/json")
    assert error.value.response["Error"]["Code"] == "ModelError"
    assert error.value.response["OriginalStatusCode"] == 500
    assert "model exploded" in error.value.response["Error"]["Message"]


def test_invoke_unknown_endpoint_is_validation_error(aws):
    runtime = boto3.client("sagemaker-runtime")
    with pytest.raises(ClientError) as error:
        runtime.invoke_endpoint(EndpointName="nope", Body=b"{}", ContentType="application/json")
    assert error.value.response["Error"]["Code"] == "ValidationError"


def test_model_from_an_approved_package_deploys_the_package_image(sm, unique):
    group = unique("grp")
    sm.create_model_package_group(ModelPackageGroupName=group)
    image = IMAGE.replace("1.2.3", "2.0.0")
    package = sm.create_model_package(
        ModelPackageGroupName=group,
        InferenceSpecification={
            "Containers": [{"Image": image, "ModelDataUrl": "s3://artifacts/run/model.tar.gz"}],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        ModelApprovalStatus="Approved",
    )["ModelPackageArn"]
    name = unique("ep-pkg")
    sm.create_model(ModelName=name, PrimaryContainer={"ModelPackageName": package}, ExecutionRoleArn=ROLE)
    make_config(sm, name, name)
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    ready = wait_for(lambda: sm.describe_endpoint(EndpointName=name), "EndpointStatus", PENDING)
    assert ready["ProductionVariants"][0]["DeployedImages"][0]["SpecifiedImage"] == image

    with pytest.raises(ClientError) as error:
        sm.create_model(ModelName=unique("bad"), PrimaryContainer={"ModelPackageName": package[:-1] + "9"})
    assert error.value.response["Error"]["Code"] == "ValidationException"


def test_autoscaling_of_a_local_endpoint_variant_is_plain_moto(deployed):
    autoscaling = boto3.client("application-autoscaling")
    resource = f"endpoint/{deployed}/variant/AllTraffic"
    autoscaling.register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=resource,
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        MinCapacity=1,
        MaxCapacity=4,
    )
    autoscaling.put_scaling_policy(
        PolicyName=f"{deployed}-invocations",
        ServiceNamespace="sagemaker",
        ResourceId=resource,
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 100.0,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
        },
    )
    targets = autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[resource])
    assert targets["ScalableTargets"][0]["MaxCapacity"] == 4
