"""Tasks of the Deployment DAG: approve a registered candidate and put it on the model's endpoint.

The endpoint is created the first time and updated in place afterwards with SageMaker deployment
guardrails (blue/green, automatic rollback on the model's CloudWatch alarms). Whatever fails, the
endpoint keeps serving the previous version: a failed or rolled-back update is detected by
comparing the serving endpoint config with the new one, and a failed smoke test rolls back.
"""

from __future__ import annotations

import csv
import io
import logging

from mlops_dags import aws, settings
from mlops_dags.training import load_config

log = logging.getLogger(__name__)

VARIANT_NAME = "AllTraffic"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
ENDPOINT_IN_PROGRESS = {"Creating", "Updating", "SystemUpdating", "RollingBack"}
ENDPOINT_FAILURE = {"Failed", "UpdateRollbackFailed", "OutOfService"}
# Blue/green: shift all traffic at once, then bake while the rollback alarms are watched.
BAKE_SECONDS = 600
LABEL_COLUMNS = ("label", "target", "y")


def _failed(message: str):
    from mlops_dags.compat import AirflowFailException

    return AirflowFailException(message)


def _normalise_version(value: str) -> str:
    return value[1:] if value.startswith("v") else value


def resolve_package(params: dict) -> dict:
    """Find the model package to deploy from a model version or a package ARN; refuse rejected
    candidates and packages of another model."""
    from mlops_core import names

    project = names.validate_name("project", params.get("project"))
    model = names.validate_name("model", params.get("model"))
    version, arn = params.get("model_version"), params.get("model_package_arn")
    if bool(version) == bool(arn):
        raise _failed("give exactly one of model_version (e.g. 1.4.2+r3) or model_package_arn in the conf")
    config = load_config(project, model)
    sm = aws.client("sagemaker")
    group = config.model_package_group_name
    if arn:
        package = sm.describe_model_package(ModelPackageName=arn)
        if package.get("ModelPackageGroupName") != group:
            raise _failed(
                f"model_package_arn={arn!r} belongs to {package.get('ModelPackageGroupName')!r}, "
                f"not to {project}/{model} ({group!r})"
            )
    else:
        wanted = _normalise_version(version)
        matches = []
        for page in sm.get_paginator("list_model_packages").paginate(ModelPackageGroupName=group):
            for summary in page.get("ModelPackageSummaryList", []):
                described = sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
                if described.get("CustomerMetadataProperties", {}).get("model_version") == wanted:
                    matches.append(described)
        if not matches:
            raise _failed(f"model_version={version!r} is not registered for {project}/{model} (group {group!r})")
        package = max(matches, key=lambda p: p.get("ModelPackageVersion", 0))
    metadata = package.get("CustomerMetadataProperties", {})
    status = package["ModelApprovalStatus"]
    if status == "Rejected":
        raise _failed(
            f"{metadata.get('model_version', package['ModelPackageArn'])} of {project}/{model} was "
            f"rejected ({metadata.get('gate', 'by a reviewer')}) and cannot be deployed"
        )
    container = package["InferenceSpecification"]["Containers"][0]
    return {
        "project": project,
        "model": model,
        "environment": config.environment,
        "package_arn": package["ModelPackageArn"],
        "approval_status": status,
        "run_name": metadata["run_name"],
        "model_version": metadata["model_version"],
        "image_uri": container["Image"],
        "model_data_url": container["ModelDataUrl"],
        "training_data": metadata.get("training_data", ""),
        "trained_at": metadata.get("trained_at", ""),
        "source_commit": metadata.get("source_commit", ""),
        "endpoint_name": config.endpoint_name,
    }


def approve(release: dict, *, airflow_run_id: str) -> None:
    if release["approval_status"] == "Approved":
        log.info("%s is already approved", release["package_arn"])
        return
    aws.client("sagemaker").update_model_package(
        ModelPackageArn=release["package_arn"],
        ModelApprovalStatus="Approved",
        ApprovalDescription=f"Approved for deployment by Airflow run {airflow_run_id}"[:1024],
    )


def manifest_environment(release: dict) -> dict[str, str]:
    from mlops_core.names import MANIFEST_ENV

    values = {
        "model_name": release["model"],
        "model_version": release["model_version"],
        "training_data": release["training_data"],
        "trained_at": release["trained_at"],
        "source_commit": release["source_commit"],
    }
    return {MANIFEST_ENV[key]: value for key, value in values.items() if value}


def create_model_and_config(release: dict) -> None:
    """The SageMaker model (with its manifest) and a new endpoint config, both named after the
    run; an existing one (a retry, a redeploy) is reused since the name pins its content."""
    config = load_config(release["project"], release["model"])
    sm = aws.client("sagemaker")
    name = release["run_name"]
    try:
        sm.create_model(
            ModelName=name,
            ExecutionRoleArn=config.sagemaker_role_arn,
            PrimaryContainer={
                "Image": release["image_uri"],
                "ModelDataUrl": release["model_data_url"],
                "Environment": manifest_environment(release),
            },
            Tags=[{"Key": "mlops:model-version", "Value": release["model_version"]}],
        )
    except Exception as exc:
        if not aws.is_already_exists(exc):
            raise
        log.info("model %s exists already", name)
    variant = {
        "VariantName": VARIANT_NAME,
        "ModelName": name,
        "InstanceType": config.endpoint.instance_type,
        "InitialInstanceCount": config.endpoint.autoscaling.min_capacity,
    }
    request = {"EndpointConfigName": name, "ProductionVariants": [variant]}
    if config.kms_key_arn:
        request["KmsKeyId"] = config.kms_key_arn
    try:
        sm.create_endpoint_config(**request)
    except Exception as exc:
        if not aws.is_already_exists(exc):
            raise
        log.info("endpoint config %s exists already", name)


def deployment_config(alarm_names) -> dict:
    policy = {
        "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": BAKE_SECONDS},
        "MaximumExecutionTimeoutInSeconds": 3 * 3600,
    }
    config = {"BlueGreenUpdatePolicy": policy}
    if alarm_names:
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": n} for n in alarm_names]}
    return config


def _describe_endpoint(sm, name: str) -> dict | None:
    try:
        return sm.describe_endpoint(EndpointName=name)
    except Exception as exc:
        if aws.is_not_found(exc):
            return None
        raise


def _wait_endpoint(sm, name: str, what: str) -> dict:
    return aws.wait_for_status(
        lambda: sm.describe_endpoint(EndpointName=name),
        status_key="EndpointStatus",
        success={"InService"},
        failure=ENDPOINT_FAILURE,
        what=what,
        timeout_seconds=settings.endpoint_timeout_seconds(),
    )


def _wait_gone(sm, name: str) -> None:
    import time

    deadline = time.monotonic() + settings.endpoint_timeout_seconds()
    while _describe_endpoint(sm, name) is not None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"endpoint {name} still exists after deletion")
        time.sleep(settings.check_interval_seconds())


def _variant_instance_type(sm, endpoint_config_name: str) -> str | None:
    variants = sm.describe_endpoint_config(EndpointConfigName=endpoint_config_name)["ProductionVariants"]
    return variants[0].get("InstanceType")


def _deregister_autoscaling(endpoint_name: str) -> None:
    scaling = aws.client("application-autoscaling")
    resource = f"endpoint/{endpoint_name}/variant/{VARIANT_NAME}"
    targets = scaling.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[resource])
    if targets.get("ScalableTargets"):
        scaling.deregister_scalable_target(
            ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=SCALABLE_DIMENSION
        )


def deploy_endpoint(release: dict) -> dict:
    """Create the endpoint or update it in place (blue/green); wait until it serves the new
    version. Returns the endpoint config served before (None for a first deployment)."""
    config = load_config(release["project"], release["model"])
    sm = aws.client("sagemaker")
    endpoint, new = release["endpoint_name"], release["run_name"]
    current = _describe_endpoint(sm, endpoint)
    if current and current["EndpointStatus"] in ENDPOINT_IN_PROGRESS:
        current = _wait_endpoint(sm, endpoint, f"endpoint {endpoint} (earlier change)")
    if current and current["EndpointStatus"] == "Failed":
        # A failed first creation leaves a Failed endpoint that serves nothing and blocks the name.
        log.info(
            "endpoint %s is Failed (%s): deleting it before creating it again",
            endpoint,
            current.get("FailureReason"),
        )
        sm.delete_endpoint(EndpointName=endpoint)
        _wait_gone(sm, endpoint)
        current = None
    if current is None:
        log.info("creating endpoint %s with %s", endpoint, new)
        sm.create_endpoint(
            EndpointName=endpoint,
            EndpointConfigName=new,
            Tags=[
                {"Key": "mlops:project", "Value": release["project"]},
                {"Key": "mlops:model", "Value": release["model"]},
            ],
        )
        previous = None
    elif current["EndpointConfigName"] == new:
        log.info("endpoint %s already serves %s", endpoint, new)
        return {"previous_config": None, "action": "unchanged"}
    else:
        previous = current["EndpointConfigName"]
        if _variant_instance_type(sm, previous) != config.endpoint.instance_type:
            # AWS rejects an update changing the instance type of an autoscaled variant; the
            # apply_autoscaling task registers the target again whatever the outcome.
            _deregister_autoscaling(endpoint)
        log.info("updating endpoint %s: %s -> %s (blue/green)", endpoint, previous, new)
        sm.update_endpoint(
            EndpointName=endpoint,
            EndpointConfigName=new,
            RetainAllVariantProperties=False,
            DeploymentConfig=deployment_config(config.endpoint.rollback_alarm_names),
        )
    try:
        final = _wait_endpoint(sm, endpoint, f"endpoint {endpoint}")
    except aws.WaitFailed as exc:
        raise _failed(
            f"{exc}; " + (f"the endpoint still serves {previous}" if previous else "nothing was serving before")
        ) from exc
    if final["EndpointConfigName"] != new:
        raise _failed(
            f"update of endpoint {endpoint} to {new} failed and was rolled back: it still serves "
            f"{final['EndpointConfigName']} ({final.get('FailureReason') or 'no reason given'})"
        )
    return {"previous_config": previous, "action": "updated" if previous else "created"}


def apply_autoscaling(release: dict) -> None:
    """Register the serving variant with Application Auto Scaling and its target-tracking policy
    (idempotent: registering again updates min/max)."""
    config = load_config(release["project"], release["model"])
    sm = aws.client("sagemaker")
    current = _describe_endpoint(sm, release["endpoint_name"])
    if current is None or current["EndpointStatus"] != "InService":
        log.info("endpoint %s is not in service: no autoscaling to apply", release["endpoint_name"])
        return
    settings_ = config.endpoint.autoscaling
    scaling = aws.client("application-autoscaling")
    resource = f"endpoint/{release['endpoint_name']}/variant/{VARIANT_NAME}"
    scaling.register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=resource,
        ScalableDimension=SCALABLE_DIMENSION,
        MinCapacity=settings_.min_capacity,
        MaxCapacity=settings_.max_capacity,
    )
    scaling.put_scaling_policy(
        PolicyName=f"{release['endpoint_name']}-invocations",
        ServiceNamespace="sagemaker",
        ResourceId=resource,
        ScalableDimension=SCALABLE_DIMENSION,
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": float(settings_.target_invocations_per_instance),
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
            "ScaleInCooldown": settings_.scale_in_cooldown_seconds,
            "ScaleOutCooldown": settings_.scale_out_cooldown_seconds,
        },
    )


def sample_request(s3, training_data: str) -> bytes:
    """One real record for the smoke test: the first row of the model's test data, without the
    label column, as a CSV line (the model template's serve accepts text/csv)."""
    bucket, prefix = aws.split_s3_uri(training_data.rstrip("/") + "/test/")
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    keys = sorted(o["Key"] for o in listing.get("Contents", []) if o["Key"].endswith(".csv"))
    if not keys:
        raise _failed(f"no test CSV under s3://{bucket}/{prefix} to smoke-test the endpoint with")
    head = s3.get_object(Bucket=bucket, Key=keys[0], Range="bytes=0-65535")["Body"].read().decode()
    rows = list(csv.reader(io.StringIO(head)))
    header, first = rows[0], rows[1]
    label = next((i for i, column in enumerate(header) if column.strip().lower() in LABEL_COLUMNS), len(header) - 1)
    line = io.StringIO()
    csv.writer(line, lineterminator="\n").writerow([v for i, v in enumerate(first) if i != label])
    return line.getvalue().encode()


def _custom_attributes(text: str | None) -> dict[str, str]:
    pairs = (part.split("=", 1) for part in (text or "").split(",") if "=" in part)
    return {k.strip(): v.strip() for k, v in pairs}


def _answered_version(answer: str) -> str | None:
    """The model template answers JSON with its manifest: {"predictions": [...], "model": {...}}."""
    import json

    try:
        document = json.loads(answer)
    except ValueError:
        return None
    manifest = document.get("model") if isinstance(document, dict) else None
    return manifest.get("model_version") if isinstance(manifest, dict) else None


def smoke_test(release: dict, deployed: dict) -> str:
    """One real invocation of the endpoint. On failure after an update, roll the endpoint back
    to the previous version before failing, so it keeps serving what worked."""
    sm = aws.client("sagemaker")
    endpoint = release["endpoint_name"]
    try:
        body = sample_request(aws.client("s3"), release["training_data"])
        response = aws.client("sagemaker-runtime", max_attempts=2).invoke_endpoint(
            EndpointName=endpoint, ContentType="text/csv", Accept="application/json", Body=body
        )
        answer = response["Body"].read().decode(errors="replace")
        served = _custom_attributes(response.get("CustomAttributes")).get("model_version") or _answered_version(answer)
        if served and served != release["model_version"]:
            raise RuntimeError(f"the endpoint answered as model_version={served}, expected {release['model_version']}")
        log.info("smoke test of %s: %s", endpoint, answer[:500])
        return f"passed: 1 record -> {answer[:200]}"
    except Exception as exc:
        previous = deployed.get("previous_config")
        if previous:
            log.error("smoke test failed (%s): rolling %s back to %s", exc, endpoint, previous)
            sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=previous, RetainAllVariantProperties=False)
            _wait_endpoint(sm, endpoint, f"rollback of endpoint {endpoint}")
            raise _failed(
                f"smoke test of {release['model_version']} on {endpoint} failed ({exc}); "
                f"rolled back: the endpoint serves {previous} again"
            ) from exc
        raise _failed(f"smoke test of {release['model_version']} on the new endpoint {endpoint} failed: {exc}") from exc


def dashboard_url(region: str, dashboard: str) -> str:
    return f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#dashboards/dashboard/{dashboard}"


def notify_deployed(release: dict, deployed: dict, smoke: str) -> dict:
    from mlops_core import names
    from mlops_dags import messages, notify

    config = load_config(release["project"], release["model"])
    region = aws.region_of(aws.client("sagemaker"))
    dashboard = config.endpoint.dashboard_name or names.dashboard_name(config.environment, config.project, config.model)
    note = messages.deployment_succeeded(
        environment=config.environment,
        project=release["project"],
        model=release["model"],
        endpoint_name=release["endpoint_name"],
        model_version=release["model_version"],
        run_name=release["run_name"],
        previous_run=deployed.get("previous_config"),
        dashboard_url=dashboard_url(region, dashboard),
        smoke_test=smoke,
        unchanged=deployed.get("action") == "unchanged",
    )
    return notify.send(notify.audience_of(config), note)
