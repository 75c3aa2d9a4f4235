"""Tasks of the Deployment DAG: approve a registered candidate and put it on the model's endpoint.

The endpoint is created the first time and updated in place afterwards with SageMaker deployment
guardrails (blue/green, automatic rollback on the model's CloudWatch alarms). Whatever fails, the
endpoint keeps serving the previous version: a failed or rolled-back update is detected by
comparing the serving endpoint config with the new one, and a failed smoke test rolls back. The
waits run in the triggerer (mlops_dags.operators); the decisions are the plain functions here.

Retry safety: before it changes the endpoint, the deployment tags it with its Airflow run, the
config it deploys and the config served before. A task retry (even after the worker died right
after UpdateEndpoint) therefore still knows what to roll back to and never mistakes its own
update for "nothing changed".
"""

from __future__ import annotations

import csv
import io
import logging
import time
from dataclasses import dataclass

from mlops_dags import aws, settings
from mlops_dags.capture import data_capture_config
from mlops_dags.training import load_config

log = logging.getLogger(__name__)

VARIANT_NAME = "AllTraffic"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
ENDPOINT_IN_PROGRESS = {"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"}
ENDPOINT_FAILURE = {"Failed", "UpdateRollbackFailed", "OutOfService"}
LABEL_COLUMNS = ("label", "target", "y")
# Tags the deployment puts on the endpoint before it changes it (see the module docstring).
DEPLOY_RUN_TAG = "mlops:deploying-run"
DEPLOY_TARGET_TAG = "mlops:deploying-config"
PREVIOUS_CONFIG_TAG = "mlops:previous-config"
DEPLOY_STARTED_TAG = "mlops:deploy-requested-at"
NO_PREVIOUS = "none"


def _failed(message: str):
    from mlops_dags.compat import AirflowFailException

    return AirflowFailException(message)


def _normalise_version(value: str) -> str:
    return value[1:] if value.startswith("v") else value


def _registered_before_records(sm, group: str, model_version: str) -> list[str]:
    """Packages registered before runs kept a registration record: found by describing the group's
    packages (the one look-up that grows with the model's history, for those versions only)."""
    log.warning("no registration record for %s in %s: searching the group's packages", model_version, group)
    return [
        summary["ModelPackageArn"]
        for page in sm.get_paginator("list_model_packages").paginate(ModelPackageGroupName=group)
        for summary in page.get("ModelPackageSummaryList", [])
        if sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
        .get("CustomerMetadataProperties", {})
        .get("model_version")
        == model_version
    ]


def _package_of_version(sm, config, project: str, model: str, model_version: str) -> dict:
    """The package a model version was registered as: the run(s) of that version from one listing,
    then each run's registration record (mlops_core.names.registration_uri). Two packages for one
    version (runs that overlapped before runs of a model were serialized) are refused rather than
    one picked silently."""
    import semver

    from mlops_core import names
    from mlops_dags.training import own_run

    parsed = semver.Version.parse(model_version)
    retrain = int(parsed.build[1:])
    image_version = parsed.replace(build=None)
    stem = names.model_stem(project, model)
    pages = sm.get_paginator("list_training_jobs").paginate(
        NameContains=names.run_name_prefix(project, model, image_version, retrain)
    )
    runs = sorted(
        {
            summary["TrainingJobName"]
            for page in pages
            for summary in page.get("TrainingJobSummaries", [])
            if (run := own_run(summary["TrainingJobName"], stem, image_version)) is not None and run.retrain == retrain
        }
    )
    s3 = aws.client("s3")
    arns = []
    for run_name in runs:
        uri = names.registration_uri(config.artifact_bucket, project, model, run_name)
        try:
            arns.append(aws.read_s3_json(s3, uri)["package_arn"])
        except Exception as exc:
            if not aws.is_not_found(exc):
                raise
            log.info("run %s of %s has no registration record at %s", run_name, model_version, uri)
    if not arns and runs:
        arns = _registered_before_records(sm, config.model_package_group_name, model_version)
    if not arns:
        raise _failed(
            f"model_version={model_version!r} is not registered for {project}/{model} (group "
            f"{config.model_package_group_name!r})"
        )
    if len(arns) > 1:
        raise _failed(
            f"model_version={model_version!r} of {project}/{model} was registered {len(arns)} times "
            f"({', '.join(arns)}): deploy one of them by model_package_arn"
        )
    return sm.describe_model_package(ModelPackageName=arns[0])


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
        package = _package_of_version(sm, config, project, model, _normalise_version(version))
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


def model_request(release: dict, config) -> dict:
    """CreateModel's request: the SageMaker model (with its manifest) named after the run; an
    existing one (a retry, a redeploy) is reused since the name pins its content."""
    return {
        "ModelName": release["run_name"],
        "ExecutionRoleArn": config.sagemaker_role_arn,
        "PrimaryContainer": {
            "Image": release["image_uri"],
            "ModelDataUrl": release["model_data_url"],
            "Environment": manifest_environment(release),
        },
        "Tags": [{"Key": "mlops:model-version", "Value": release["model_version"]}],
    }


def endpoint_config_request(release: dict, config) -> dict:
    """CreateEndpointConfig's request, named after the run as the model is."""
    variant = {
        "VariantName": VARIANT_NAME,
        "ModelName": release["run_name"],
        "InstanceType": config.endpoint.instance_type,
        "InitialInstanceCount": config.endpoint.autoscaling.min_capacity,
    }
    request = {"EndpointConfigName": release["run_name"], "ProductionVariants": [variant]}
    if config.kms_key_arn:
        request["KmsKeyId"] = config.kms_key_arn
    capture = data_capture_config(config)
    if capture:
        request["DataCaptureConfig"] = capture
    return request


def deployment_config(alarm_names) -> dict:
    policy = {
        "TrafficRoutingConfiguration": {
            "Type": "ALL_AT_ONCE",
            "WaitIntervalInSeconds": settings.BLUE_GREEN_BAKE_SECONDS,
        },
        "MaximumExecutionTimeoutInSeconds": settings.BLUE_GREEN_MAX_SECONDS,
    }
    config = {"BlueGreenUpdatePolicy": policy}
    if alarm_names:
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": n} for n in alarm_names]}
    return config


def describe_endpoint(sm, name: str) -> dict | None:
    try:
        return sm.describe_endpoint(EndpointName=name)
    except Exception as exc:
        if aws.is_not_found(exc):
            return None
        raise


def _tags(sm, arn: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=arn).get("Tags", [])}


@dataclass(frozen=True)
class EndpointStep:
    """What the deploy_endpoint task does next, decided from the endpoint's state and its tags:
    ``wait`` (a change in progress: an earlier one, or this run's own after a task retry),
    ``delete`` (a Failed endpoint blocks the name), ``create``, ``update``, ``verify`` (this run's
    change is done) or ``unchanged`` (the endpoint already served this version before the run)."""

    action: str
    previous: str | None = None
    status: str = ""


def _timestamp(value) -> float:
    return value.timestamp() if hasattr(value, "timestamp") else float(value)


def next_endpoint_step(endpoint: dict | None, tags: dict[str, str], *, new: str, airflow_run_id: str) -> EndpointStep:
    if endpoint is None:
        return EndpointStep("create")
    status, serving = endpoint["EndpointStatus"], endpoint["EndpointConfigName"]
    ours = tags.get(DEPLOY_RUN_TAG) == airflow_run_id[:256] and tags.get(DEPLOY_TARGET_TAG) == new
    previous = tags.get(PREVIOUS_CONFIG_TAG) if ours else None
    previous = None if previous == NO_PREVIOUS else previous
    if status in ENDPOINT_IN_PROGRESS:
        return EndpointStep("wait", previous=previous, status=status)
    if status == "Failed":
        if ours and previous is None:
            raise _failed(
                f"creating endpoint {endpoint['EndpointName']} with {new} failed: "
                f"{endpoint.get('FailureReason') or 'no FailureReason given'}; nothing was serving before"
            )
        return EndpointStep("delete", status=status)
    if status in ENDPOINT_FAILURE:
        raise _failed(
            f"endpoint {endpoint['EndpointName']} is {status} ({endpoint.get('FailureReason') or 'no reason given'}): "
            "it needs a person before it can be deployed to"
        )
    if serving == new:
        return EndpointStep("verify" if ours else "unchanged", previous=previous, status=status)
    # This run tagged the endpoint for its update and the endpoint changed after that, yet serves
    # another config: SageMaker rolled the update back (a retry must not mistake it for "not tried").
    if ours and _timestamp(endpoint["LastModifiedTime"]) >= float(tags.get(DEPLOY_STARTED_TAG, "inf")):
        raise _failed(
            f"update of endpoint {endpoint['EndpointName']} to {new} failed and was rolled back: it still "
            f"serves {serving} ({endpoint.get('FailureReason') or 'no reason given'})"
        )
    return EndpointStep("update", previous=serving, status=status)


def endpoint_step(release: dict, *, airflow_run_id: str) -> tuple[EndpointStep, dict | None]:
    sm = aws.client("sagemaker")
    endpoint = describe_endpoint(sm, release["endpoint_name"])
    tags = _tags(sm, endpoint["EndpointArn"]) if endpoint else {}
    step = next_endpoint_step(endpoint, tags, new=release["run_name"], airflow_run_id=airflow_run_id)
    log.info("endpoint %s: %s (%s)", release["endpoint_name"], step.action, step.status or "absent")
    return step, endpoint


def intent_tags(release: dict, previous: str | None, airflow_run_id: str) -> list[dict]:
    """Recorded on the endpoint before it is changed (see the module docstring)."""
    return [
        {"Key": DEPLOY_RUN_TAG, "Value": airflow_run_id[:256]},
        {"Key": DEPLOY_TARGET_TAG, "Value": release["run_name"]},
        {"Key": PREVIOUS_CONFIG_TAG, "Value": previous or NO_PREVIOUS},
        {"Key": DEPLOY_STARTED_TAG, "Value": f"{time.time():.3f}"},
    ]


def create_request(release: dict, airflow_run_id: str) -> dict:
    return {
        "EndpointName": release["endpoint_name"],
        "EndpointConfigName": release["run_name"],
        "Tags": [
            {"Key": "mlops:project", "Value": release["project"]},
            {"Key": "mlops:model", "Value": release["model"]},
            *intent_tags(release, None, airflow_run_id),
        ],
    }


def prepare_update(release: dict, endpoint: dict, previous: str, airflow_run_id: str) -> dict:
    """Record the intent on the endpoint, make the update acceptable, and return its request."""
    config = load_config(release["project"], release["model"])
    sm = aws.client("sagemaker")
    sm.add_tags(ResourceArn=endpoint["EndpointArn"], Tags=intent_tags(release, previous, airflow_run_id))
    if _variant_instance_type(sm, previous) != config.endpoint.instance_type:
        # AWS rejects an update changing the instance type of an autoscaled variant; the
        # apply_autoscaling task registers the target again whatever the outcome.
        _deregister_autoscaling(release["endpoint_name"])
    log.info("updating endpoint %s: %s -> %s (blue/green)", release["endpoint_name"], previous, release["run_name"])
    return {
        "EndpointName": release["endpoint_name"],
        "EndpointConfigName": release["run_name"],
        "RetainAllVariantProperties": False,
        "DeploymentConfig": deployment_config(config.endpoint.rollback_alarm_names),
    }


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


def deployed(step: EndpointStep) -> dict:
    """The deploy_endpoint task's result: the config served before (None for a first deployment
    or when nothing changed) and what happened."""
    if step.action == "unchanged":
        return {"previous_config": None, "action": "unchanged"}
    return {"previous_config": step.previous, "action": "updated" if step.previous else "created"}


def apply_autoscaling(release: dict) -> None:
    """Register the serving variant with Application Auto Scaling and its target-tracking policy
    (idempotent: registering again updates min/max)."""
    config = load_config(release["project"], release["model"])
    sm = aws.client("sagemaker")
    current = describe_endpoint(sm, release["endpoint_name"])
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


def smoke_test(release: dict) -> str:
    """One real invocation of the endpoint with a record of the model's test data; raises when the
    endpoint errs or answers as another model version."""
    endpoint = release["endpoint_name"]
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


def start_rollback(release: dict, previous: str) -> None:
    """Put the previous config back on the endpoint (the smoke test failed after an update)."""
    log.error("rolling %s back to %s", release["endpoint_name"], previous)
    aws.client("sagemaker").update_endpoint(
        EndpointName=release["endpoint_name"], EndpointConfigName=previous, RetainAllVariantProperties=False
    )


def rollback_outcome(release: dict, previous: str, error: str):
    """The smoke test's failure once the rollback ended, saying what serves now."""
    endpoint = describe_endpoint(aws.client("sagemaker"), release["endpoint_name"]) or {}
    if endpoint.get("EndpointStatus") == "InService" and endpoint.get("EndpointConfigName") == previous:
        return _failed(
            f"smoke test of {release['model_version']} on {release['endpoint_name']} failed ({error}); "
            f"rolled back: the endpoint serves {previous} again"
        )
    return _failed(
        f"smoke test of {release['model_version']} on {release['endpoint_name']} failed ({error}); the rollback "
        f"to {previous} did not complete: the endpoint is {endpoint.get('EndpointStatus', 'gone')} on "
        f"{endpoint.get('EndpointConfigName')} ({endpoint.get('FailureReason') or 'no reason given'})"
    )


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
