"""Tasks of the Training & Evaluation DAG, as plain functions of plain values.

Every SageMaker name comes from mlops_core.names.RunName. Each step is safe to retry: a job that
already exists under this run's name and was started by the same Airflow run is waited on again
instead of being created twice.
"""

from __future__ import annotations

import json
import logging

from mlops_dags import aws, settings

log = logging.getLogger(__name__)

# The model template's container contract (model_template/src/mlops_runtime/paths.py): the data
# prefix holds train/ (and optionally validation/) for training and test/ for evaluation.
TRAIN_CHANNEL = "train"
TEST_CHANNEL = "test"
PROCESSING_MODEL_DIR = "/opt/ml/processing/model"
PROCESSING_TEST_DIR = "/opt/ml/processing/test"
PROCESSING_EVALUATION_DIR = "/opt/ml/processing/evaluation"
EVALUATION_FILE = "evaluation.json"
EVALUATE_ENTRYPOINT = ["evaluate"]
RUN_ID_TAG = "mlops:airflow-run-id"

JOB_SUCCESS = {"Completed"}
JOB_FAILURE = {"Failed", "Stopped"}


def load_config(project: str, model: str):
    from mlops_core.pipeline_config import load_pipeline_config

    return load_pipeline_config(settings.dags_folder(), project, model)


def _paginate(sm, operation: str, result_key: str, name_key: str, **kwargs) -> list[str]:
    found = []
    for page in sm.get_paginator(operation).paginate(**kwargs):
        found.extend(item[name_key] for item in page.get(result_key, []))
    return found


def known_run_names(sm, project: str, model: str) -> list[str]:
    """Names of this model's earlier runs: its SageMaker models (one per deployed version) and
    training jobs (one per run, deployed or not), so retraining numbers never repeat.

    ``NameContains`` only narrows the listing; mlops_core filters and sorts client-side.
    """
    from mlops_core import names

    stem = names.model_stem(project, model)
    return _paginate(sm, "list_models", "Models", "ModelName", NameContains=stem) + _paginate(
        sm, "list_training_jobs", "TrainingJobSummaries", "TrainingJobName", NameContains=stem
    )


def _hyperparameter_value(value) -> str:
    # SageMaker passes hyperparameters as strings; JSON spelling keeps true/false and numbers
    # parseable by the container (hyperparameters.json).
    return value if isinstance(value, str) else json.dumps(value)


def prepare_run(params: dict, *, airflow_run_id: str) -> dict:
    """Validate the conf, read the model's configuration and name this run."""
    from mlops_core import names

    project = names.validate_name("project", params.get("project"))
    model = names.validate_name("model", params.get("model"))
    version = names.parse_version(params.get("image_tag"))
    if version.prerelease or version.build:
        raise names.InvalidName(f"image_tag={params.get('image_tag')!r} must be a release version MAJOR.MINOR.PATCH")
    config = load_config(project, model)
    sm = aws.client("sagemaker")
    known = known_run_names(sm, project, model)
    retrain = names.next_retrain_number(known, project, model, version)
    previous = names.latest_run(known, project, model)
    run = names.RunName.new(project, model, version, retrain)
    hyperparameters = {**config.training.hyperparameters, **(params.get("hyperparameters") or {})}
    data_uri = params.get("data_path") or config.training_data_uri
    if not data_uri.endswith("/"):
        data_uri += "/"
    log.info(
        "run %s: %s of %s/%s version %s (latest earlier run: %s)",
        run,
        "retraining" if params.get("retraining") else "training",
        project,
        model,
        version,
        previous,
    )
    return {
        "project": project,
        "model": model,
        "environment": config.environment,
        "run_name": str(run),
        "model_version": run.model_version,
        "retrain": retrain,
        "retraining": bool(params.get("retraining")),
        "image_tag": params["image_tag"],
        "image_uri": f"{config.image_repository_uri}:{params['image_tag']}",
        "training_data": data_uri,
        "output_uri": config.run_output_uri(str(run)),
        "hyperparameters": {k: _hyperparameter_value(v) for k, v in sorted(hyperparameters.items())},
        "source_commit": params.get("source_commit") or "",
        "trained_at": run.trained_at.isoformat(),
        "airflow_run_id": airflow_run_id,
        "previous_run": str(previous) if previous else None,
    }


def _tags(run: dict) -> list[dict]:
    return [
        {"Key": RUN_ID_TAG, "Value": run["airflow_run_id"][:256]},
        {"Key": "mlops:project", "Value": run["project"]},
        {"Key": "mlops:model", "Value": run["model"]},
        {"Key": "mlops:model-version", "Value": run["model_version"]},
    ]


def _started_by_this_run(sm, arn: str, run: dict) -> bool:
    tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=arn).get("Tags", [])}
    return tags.get(RUN_ID_TAG) == run["airflow_run_id"][:256]


def _create_or_resume(sm, *, create, describe, arn_key: str, run: dict, what: str) -> None:
    """Create a job, or on a task retry resume waiting for the one this Airflow run created."""
    try:
        create()
        log.info("started %s", what)
    except Exception as exc:
        if not aws.is_already_exists(exc):
            raise
        existing = describe()
        if not _started_by_this_run(sm, existing[arn_key], run):
            raise RuntimeError(
                f"{what} already exists and was not started by this DAG run: "
                "two runs started in the same second? Trigger again."
            ) from exc
        log.info("%s already started by this DAG run (task retry): waiting for it", what)


def train(run: dict) -> dict:
    """Run the SageMaker training job; return its ARN and model artifact."""
    from mlops_dags.compat import AirflowFailException

    config = load_config(run["project"], run["model"])
    sm = aws.client("sagemaker")
    name = run["run_name"]
    kms = config.kms_key_arn
    output = {"S3OutputPath": run["output_uri"] + "model"}
    resources = {
        "InstanceType": config.training.instance_type,
        "InstanceCount": config.training.instance_count,
        "VolumeSizeInGB": config.training.volume_size_gb,
    }
    if kms:
        output["KmsKeyId"] = kms
        resources["VolumeKmsKeyId"] = kms
    request = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": run["image_uri"], "TrainingInputMode": "File"},
        "RoleArn": config.sagemaker_role_arn,
        "InputDataConfig": [
            {
                "ChannelName": TRAIN_CHANNEL,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3DataDistributionType": "FullyReplicated",
                        "S3Uri": run["training_data"] + TRAIN_CHANNEL + "/",
                    }
                },
            }
        ],
        "OutputDataConfig": output,
        "ResourceConfig": resources,
        "StoppingCondition": {"MaxRuntimeInSeconds": config.training.max_runtime_seconds},
        "HyperParameters": run["hyperparameters"],
        "EnableNetworkIsolation": False,
        "Tags": _tags(run),
    }
    describe = lambda: sm.describe_training_job(TrainingJobName=name)  # noqa: E731
    _create_or_resume(
        sm,
        create=lambda: sm.create_training_job(**request),
        describe=describe,
        arn_key="TrainingJobArn",
        run=run,
        what=f"training job {name}",
    )
    try:
        job = aws.wait_for_status(
            describe,
            status_key="TrainingJobStatus",
            success=JOB_SUCCESS,
            failure=JOB_FAILURE,
            what=f"training job {name}",
            timeout_seconds=config.training.max_runtime_seconds + 3600,
        )
    except aws.WaitFailed as exc:
        # The job itself failed: retrying this task would only wait on the same failed job.
        raise AirflowFailException(str(exc)) from exc
    return {
        "training_job_arn": job["TrainingJobArn"],
        "model_artifact": job["ModelArtifacts"]["S3ModelArtifacts"],
    }


def evaluation_uri(output_uri: str) -> str:
    return output_uri + "evaluation"


def evaluate(run: dict, trained: dict) -> dict:
    """Run the image's ``evaluate`` entry point as a processing job; return evaluation.json."""
    from mlops_dags.compat import AirflowFailException

    config = load_config(run["project"], run["model"])
    sm = aws.client("sagemaker")
    name = run["run_name"]
    outputs = {
        "Outputs": [
            {
                "OutputName": "evaluation",
                "S3Output": {
                    "S3Uri": evaluation_uri(run["output_uri"]),
                    "LocalPath": PROCESSING_EVALUATION_DIR,
                    "S3UploadMode": "EndOfJob",
                },
            }
        ]
    }
    cluster = {"InstanceCount": 1, "InstanceType": config.evaluation.instance_type, "VolumeSizeInGB": 30}
    if config.kms_key_arn:
        outputs["KmsKeyId"] = config.kms_key_arn
        cluster["VolumeKmsKeyId"] = config.kms_key_arn
    request = {
        "ProcessingJobName": name,
        "ProcessingResources": {"ClusterConfig": cluster},
        "StoppingCondition": {"MaxRuntimeInSeconds": config.evaluation.max_runtime_seconds},
        "AppSpecification": {"ImageUri": run["image_uri"], "ContainerEntrypoint": EVALUATE_ENTRYPOINT},
        "RoleArn": config.sagemaker_role_arn,
        "ProcessingInputs": [
            {
                "InputName": "model",
                "S3Input": {
                    "S3Uri": trained["model_artifact"],
                    "LocalPath": PROCESSING_MODEL_DIR,
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            },
            {
                "InputName": TEST_CHANNEL,
                "S3Input": {
                    "S3Uri": run["training_data"] + TEST_CHANNEL + "/",
                    "LocalPath": PROCESSING_TEST_DIR,
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            },
        ],
        "ProcessingOutputConfig": outputs,
        "Tags": _tags(run),
    }
    describe = lambda: sm.describe_processing_job(ProcessingJobName=name)  # noqa: E731
    _create_or_resume(
        sm,
        create=lambda: sm.create_processing_job(**request),
        describe=describe,
        arn_key="ProcessingJobArn",
        run=run,
        what=f"evaluation job {name}",
    )
    try:
        aws.wait_for_status(
            describe,
            status_key="ProcessingJobStatus",
            success=JOB_SUCCESS,
            failure=JOB_FAILURE,
            what=f"evaluation job {name}",
            timeout_seconds=config.evaluation.max_runtime_seconds + 3600,
        )
    except aws.WaitFailed as exc:
        raise AirflowFailException(str(exc)) from exc
    uri = f"{evaluation_uri(run['output_uri'])}/{EVALUATION_FILE}"
    evaluation = aws.read_s3_json(aws.client("s3"), uri)
    metrics = evaluation.get("metrics")
    if not isinstance(metrics, dict) or not metrics:
        raise AirflowFailException(f"{uri} has no metrics: {json.dumps(evaluation)[:500]}")
    if evaluation.get("problem_type") not in (None, config.problem_type):
        raise AirflowFailException(
            f"{uri} reports problem_type={evaluation.get('problem_type')!r} but the model is configured "
            f"as {config.problem_type!r}"
        )
    return {"uri": uri, "metrics": metrics, "confusion_matrix": evaluation.get("confusion_matrix")}


def serving_run(sm, endpoint_name: str) -> str | None:
    """The SageMaker model (= run name) the endpoint serves now, or None when there is none."""
    try:
        endpoint = sm.describe_endpoint(EndpointName=endpoint_name)
    except Exception as exc:
        if aws.is_not_found(exc):
            return None
        raise
    if endpoint.get("EndpointStatus") == "Failed":
        return None
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    return config["ProductionVariants"][0]["ModelName"]


def production_evaluation(run: dict) -> dict:
    """The serving model's run and its recorded evaluation metrics (None when unknown)."""
    config = load_config(run["project"], run["model"])
    sm = aws.client("sagemaker")
    production = serving_run(sm, config.endpoint_name)
    if production is None:
        return {"run_name": None, "metrics": None}
    uri = f"{evaluation_uri(config.run_output_uri(production))}/{EVALUATION_FILE}"
    try:
        metrics = aws.read_s3_json(aws.client("s3"), uri).get("metrics")
    except Exception as exc:  # noqa: BLE001 - e.g. a model deployed by hand: compare with threshold only
        log.warning(
            "no evaluation of the serving model %s at %s (%s): gating on the threshold only",
            production,
            uri,
            exc,
        )
        metrics = None
    return {"run_name": production, "metrics": metrics}


def quality_gate(run: dict, evaluation: dict, production: dict) -> dict:
    from mlops_dags.gate import evaluate_gate

    config = load_config(run["project"], run["model"])
    verdict = evaluate_gate(
        metric=config.gate.metric,
        greater_is_better=config.gate.greater_is_better,
        threshold=config.gate.threshold,
        max_regression=config.gate.max_regression,
        candidate_metrics=evaluation["metrics"],
        production_metrics=production.get("metrics"),
    )
    log.info("quality gate %s: %s", verdict.summary, "; ".join(verdict.reasons) or "all checks met")
    return verdict.to_dict()


def publish_metrics(run: dict, evaluation: dict) -> None:
    """Evaluation metrics to CloudWatch, where the model's dashboard graphs them."""
    from mlops_core import names

    dimensions = [
        {"Name": k, "Value": v}
        for k, v in names.model_metric_dimensions(run["environment"], run["project"], run["model"]).items()
    ]
    data = [
        {"MetricName": key, "Value": float(value), "Dimensions": dimensions}
        for key, value in sorted(evaluation["metrics"].items())
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    ]
    if data:
        aws.client("cloudwatch").put_metric_data(Namespace=names.MODEL_METRICS_NAMESPACE, MetricData=data)


def _ensure_package_group(sm, group: str, run: dict) -> None:
    try:
        sm.describe_model_package_group(ModelPackageGroupName=group)
    except Exception as exc:
        if not aws.is_not_found(exc):
            raise
        try:
            sm.create_model_package_group(
                ModelPackageGroupName=group,
                ModelPackageGroupDescription=f"Candidates of {run['project']}/{run['model']}",
            )
        except Exception as create_exc:  # a concurrent run created it first
            if not aws.is_already_exists(create_exc):
                raise


def _packages(sm, group: str) -> list[dict]:
    summaries = []
    for page in sm.get_paginator("list_model_packages").paginate(ModelPackageGroupName=group):
        summaries.extend(page.get("ModelPackageSummaryList", []))
    return summaries


def register(run: dict, trained: dict, evaluation: dict, production: dict, verdict: dict) -> dict:
    """Register the candidate in the model's package group with its lineage: pending manual
    approval when it passed the gate, Rejected (never deployable) when it did not."""
    from mlops_core import names

    config = load_config(run["project"], run["model"])
    sm = aws.client("sagemaker")
    group = config.model_package_group_name
    _ensure_package_group(sm, group, run)
    # The evaluate job writes its files side by side (mlops_core.names): the registry shows the
    # model-quality file; the confusion-matrix image is linked from the package's metadata.
    evaluation_prefix = evaluation["uri"].rsplit("/", 1)[0]
    confusion_matrix = f"{evaluation_prefix}/{names.CONFUSION_MATRIX_FILE}"
    for summary in _packages(sm, group):  # a task retry finds the package it already created
        package = sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
        if package.get("CustomerMetadataProperties", {}).get("run_name") == run["run_name"]:
            return {"package_arn": summary["ModelPackageArn"], "status": package["ModelApprovalStatus"]}
    status = "PendingManualApproval" if verdict["passed"] else "Rejected"
    metadata = {
        "run_name": run["run_name"],
        "model_version": run["model_version"],
        "image_uri": run["image_uri"],
        "image_tag": run["image_tag"],
        "source_commit": run["source_commit"] or "unknown",
        "training_data": run["training_data"],
        "training_job": trained["training_job_arn"],
        "trained_at": run["trained_at"],
        "retraining": str(run["retraining"]).lower(),
        "airflow_run_id": run["airflow_run_id"][:256],
        "gate": ("passed" if verdict["passed"] else "rejected: " + "; ".join(verdict["reasons"]))[:256],
        "production_run": production.get("run_name") or "none",
        **{f"metric.{k}": str(v) for k, v in sorted(evaluation["metrics"].items())},
    }
    if config.problem_type == "classification" and len(confusion_matrix) <= 256:  # metadata value limit
        metadata["confusion_matrix"] = confusion_matrix
    response = sm.create_model_package(
        ModelPackageGroupName=group,
        ModelPackageDescription=f"{run['project']}/{run['model']} {run['model_version']} ({run['run_name']})",
        InferenceSpecification={
            "Containers": [{"Image": run["image_uri"], "ModelDataUrl": trained["model_artifact"]}],
            "SupportedContentTypes": list(names.SUPPORTED_CONTENT_TYPES),
            "SupportedResponseMIMETypes": list(names.SUPPORTED_RESPONSE_MIME_TYPES),
        },
        ModelApprovalStatus=status,
        MetadataProperties={
            "CommitId": run["source_commit"] or "unknown",
            "GeneratedBy": trained["training_job_arn"],
            "ProjectId": run["project"],
        },
        ModelMetrics={
            "ModelQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": f"{evaluation_prefix}/{names.MODEL_QUALITY_FILE}",
                }
            }
        },
        CustomerMetadataProperties=metadata,
    )
    log.info("registered %s as %s: %s", run["run_name"], status, response["ModelPackageArn"])
    return {"package_arn": response["ModelPackageArn"], "status": status}


def notify_result(run: dict, evaluation: dict, production: dict, verdict: dict, package: dict) -> dict:
    from mlops_core import names
    from mlops_dags import messages, notify

    config = load_config(run["project"], run["model"])
    note = messages.training_result(
        environment=run["environment"],
        project=run["project"],
        model=run["model"],
        run_name=run["run_name"],
        model_version=run["model_version"],
        retraining=run["retraining"],
        image_uri=run["image_uri"],
        training_data=run["training_data"],
        metrics=evaluation["metrics"],
        confusion_matrix=evaluation.get("confusion_matrix"),
        production_run=production.get("run_name"),
        production_metrics=production.get("metrics"),
        verdict=verdict,
        package_arn=package["package_arn"],
        deployment_dag_id=names.DAG_DEPLOYMENT,
    )
    return notify.send(notify.audience_of(config), note)
