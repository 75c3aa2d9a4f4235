"""Tasks of the Training & Evaluation DAG, as plain functions of plain values.

Every SageMaker name comes from mlops_core.names.RunName. The SageMaker jobs are started and waited
for by the Amazon provider's operators (mlops_dags.operators), which call the request builders and
result readers here. Each step is safe to retry: a job that already exists under this run's name and
was started by the same Airflow run is waited on again instead of being created twice.
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
# The training data in, its drift baseline (Model Monitor's statistics/constraints) out.
PROCESSING_TRAIN_DIR = "/opt/ml/processing/train"
PROCESSING_BASELINE_DIR = "/opt/ml/processing/baseline"
EVALUATION_FILE = "evaluation.json"
EVALUATE_ENTRYPOINT = ["evaluate"]
RUN_ID_TAG = "mlops:airflow-run-id"

JOB_SUCCESS = {"Completed"}
JOB_FAILURE = {"Failed", "Stopped"}


def load_config(project: str, model: str):
    from mlops_core.pipeline_config import load_pipeline_config

    return load_pipeline_config(settings.dags_folder(), project, model)


def own_run(name: str, stem: str, version=None):
    """The RunName of ``name`` when it is a run of the model with this stem (and version), else None."""
    from mlops_core import names

    try:
        run = names.RunName.parse(name)
    except names.InvalidName:
        return None
    return run if run.stem == stem and (version is None or run.version == version) else None


# SageMaker listings of a model's runs, newest first: (operation, result key, name key).
RUN_LISTINGS = (
    ("list_training_jobs", "TrainingJobSummaries", "TrainingJobName"),
    ("list_models", "Models", "ModelName"),
)


def newest_run(sm, project: str, model: str, version=None):
    """The newest run (a RunName) of a model, or of one image version of it, by creation time: its
    training jobs (one per run, deployed or not) and SageMaker models (one per deployed run),
    listed newest first, so one call each whatever the model's history.

    ``NameContains`` matches substrings (``a--b`` is inside ``x-a--b``): another model's runs on a
    page are skipped client-side, and a further page is read only then.
    """
    from mlops_core import names

    if isinstance(version, str):
        version = names.parse_version(version)
    stem = names.model_stem(project, model)
    found = []
    for operation, result_key, name_key in RUN_LISTINGS:
        pages = sm.get_paginator(operation).paginate(
            NameContains=names.run_name_prefix(project, model, version),
            SortBy="CreationTime",
            SortOrder="Descending",
            PaginationConfig={"PageSize": 10},
        )
        run = next(
            (
                own
                for page in pages
                for item in page.get(result_key, [])
                if (own := own_run(item[name_key], stem, version)) is not None
            ),
            None,
        )
        if run is not None:
            found.append(run)
    return max(found, key=lambda run: (run.trained_at, run), default=None)


def _hyperparameter_value(value) -> str:
    # SageMaker passes hyperparameters as strings; JSON spelling keeps true/false and numbers
    # parseable by the container (hyperparameters.json).
    return value if isinstance(value, str) else json.dumps(value)


def prepare_run(params: dict, *, airflow_run_id: str) -> dict:
    """Validate the conf, read the model's configuration and name this run. Runs of one model
    never overlap (the task first takes the model's lease), so the newest earlier run of this image
    version gives the next retraining number, unless that run is this Airflow run's own (its
    training job carries the run's tag): a retried task names the run it named before."""
    from mlops_core import names

    project = names.validate_name("project", params.get("project"))
    model = names.validate_name("model", params.get("model"))
    version = names.parse_version(params.get("image_tag"))
    if version.prerelease or version.build:
        raise names.InvalidName(f"image_tag={params.get('image_tag')!r} must be a release version MAJOR.MINOR.PATCH")
    if params.get("reason") == "drift" and not (
        params.get("drift_check") and params.get("drifted_features") and params.get("retraining")
    ):
        raise ValueError("reason 'drift' needs drift_check, drifted_features (at least one) and retraining true")
    config = load_config(project, model)
    sm = aws.client("sagemaker")
    newest_of_version = newest_run(sm, project, model, version)
    if newest_of_version is not None and _job_started_by(sm, str(newest_of_version), airflow_run_id):
        run = newest_of_version  # a retry of this task: the run it named, whose job it started
    else:
        run = names.RunName.new(project, model, version, newest_of_version.retrain + 1 if newest_of_version else 0)
    retrain = run.retrain
    previous = newest_run(sm, project, model)
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
        "model_artifact": model_artifact_uri(config.run_output_uri(str(run)), str(run)),
        "evaluation_file": evaluation_file_uri(config.run_output_uri(str(run))),
        "hyperparameters": {k: _hyperparameter_value(v) for k, v in sorted(hyperparameters.items())},
        "source_commit": params.get("source_commit") or "",
        "trained_at": run.trained_at.isoformat(),
        "airflow_run_id": airflow_run_id,
        "previous_run": str(previous) if previous and previous != run else None,
        # A drift retraining (started by the model's drift alarm through the trigger Lambda).
        "reason": params.get("reason"),
        "drifted_features": list(params.get("drifted_features") or []),
        "drift_check": params.get("drift_check"),
    }


def run_tags(run: dict) -> list[dict]:
    return [
        {"Key": RUN_ID_TAG, "Value": run["airflow_run_id"][:256]},
        {"Key": "mlops:project", "Value": run["project"]},
        {"Key": "mlops:model", "Value": run["model"]},
        {"Key": "mlops:model-version", "Value": run["model_version"]},
    ]


def _job_started_by(sm, job_name: str, airflow_run_id: str) -> bool:
    try:
        arn = sm.describe_training_job(TrainingJobName=job_name)["TrainingJobArn"]
    except Exception as exc:
        if aws.is_not_found(exc):
            return False
        raise
    return started_by(sm, arn, airflow_run_id)


def started_by(sm, arn: str, airflow_run_id: str) -> bool:
    """Whether the SageMaker resource carries this Airflow run's tag (a task retry's own job)."""
    tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=arn).get("Tags", [])}
    return tags.get(RUN_ID_TAG) == airflow_run_id[:256]


def training_request(run: dict, config) -> dict:
    """CreateTrainingJob's request for this run."""
    output = {"S3OutputPath": model_output_uri(run["output_uri"])}
    resources = {
        "InstanceType": config.training.instance_type,
        "InstanceCount": config.training.instance_count,
        "VolumeSizeInGB": config.training.volume_size_gb,
    }
    if config.kms_key_arn:
        output["KmsKeyId"] = config.kms_key_arn
        resources["VolumeKmsKeyId"] = config.kms_key_arn
    return {
        "TrainingJobName": run["run_name"],
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
        "Tags": run_tags(run),
    }


def training_result(job: dict) -> dict:
    return {
        "training_job_arn": job["TrainingJobArn"],
        "model_artifact": job["ModelArtifacts"]["S3ModelArtifacts"],
    }


def evaluation_uri(output_uri: str) -> str:
    return output_uri + "evaluation"


def model_output_uri(output_uri: str) -> str:
    return output_uri + "model"


def model_artifact_uri(output_uri: str, run_name: str) -> str:
    """Where the training job puts the model: ``{S3OutputPath}/{TrainingJobName}/output/model.tar.gz``,
    CreateTrainingJob's documented layout (the tasks after training read it from there)."""
    return f"{model_output_uri(output_uri)}/{run_name}/output/model.tar.gz"


def evaluation_file_uri(output_uri: str) -> str:
    return f"{evaluation_uri(output_uri)}/{EVALUATION_FILE}"


def baseline_files(output_uri: str) -> tuple[str, str]:
    """The run's drift baseline: Model Monitor's statistics.json and constraints.json."""
    from mlops_core import names

    folder = names.baseline_uri(output_uri)
    return folder + names.BASELINE_STATISTICS_FILE, folder + names.BASELINE_CONSTRAINTS_FILE


def processing_input(name: str, uri: str, local_path: str, data_type: str = "S3Prefix") -> dict:
    return {
        "InputName": name,
        "S3Input": {"S3Uri": uri, "LocalPath": local_path, "S3DataType": data_type, "S3InputMode": "File"},
    }


def processing_request(
    *,
    name: str,
    image_uri: str,
    entrypoint: list[str],
    config,
    inputs: list[dict],
    outputs: list[tuple[str, str, str]],
    environment: dict[str, str],
    tags: list[dict],
) -> dict:
    """CreateProcessingJob's request for one of the model's processing jobs (evaluation, drift
    check): its image and role, the evaluation's instance and runtime settings, encrypted with the
    platform key; ``outputs`` are (name, S3 URI, local path)."""
    output_config = {
        "Outputs": [
            {"OutputName": output, "S3Output": {"S3Uri": uri, "LocalPath": local, "S3UploadMode": "EndOfJob"}}
            for output, uri, local in outputs
        ]
    }
    cluster = {"InstanceCount": 1, "InstanceType": config.evaluation.instance_type, "VolumeSizeInGB": 30}
    if config.kms_key_arn:
        output_config["KmsKeyId"] = config.kms_key_arn
        cluster["VolumeKmsKeyId"] = config.kms_key_arn
    return {
        "ProcessingJobName": name,
        "ProcessingResources": {"ClusterConfig": cluster},
        "StoppingCondition": {"MaxRuntimeInSeconds": config.evaluation.max_runtime_seconds},
        "AppSpecification": {"ImageUri": image_uri, "ContainerEntrypoint": entrypoint},
        "RoleArn": config.sagemaker_role_arn,
        "ProcessingInputs": inputs,
        "ProcessingOutputConfig": output_config,
        "Environment": environment,
        "Tags": tags,
    }


def evaluation_request(run: dict, config) -> dict:
    """CreateProcessingJob's request: the image's ``evaluate`` entry point on the trained model,
    which also writes the training data's drift baseline."""
    from mlops_core import names

    return processing_request(
        name=run["run_name"],
        image_uri=run["image_uri"],
        entrypoint=EVALUATE_ENTRYPOINT,
        config=config,
        inputs=[
            processing_input("model", run["model_artifact"], PROCESSING_MODEL_DIR),
            processing_input(TEST_CHANNEL, run["training_data"] + TEST_CHANNEL + "/", PROCESSING_TEST_DIR),
            processing_input(TRAIN_CHANNEL, run["training_data"] + TRAIN_CHANNEL + "/", PROCESSING_TRAIN_DIR),
        ],
        outputs=[
            ("evaluation", evaluation_uri(run["output_uri"]), PROCESSING_EVALUATION_DIR),
            ("baseline", names.baseline_uri(run["output_uri"]), PROCESSING_BASELINE_DIR),
        ],
        # The baseline's constraints carry the model's drift threshold (Model Monitor's
        # distribution_constraints.comparison_threshold), as a baselining job's would.
        environment={names.DRIFT_COMPARISON_THRESHOLD_ENV: repr(config.drift.comparison_threshold)},
        tags=run_tags(run),
    )


def evaluation_result(uri: str, config) -> dict:
    """The completed evaluation's evaluation.json, checked: metrics present, problem type as configured."""
    from mlops_dags.compat import AirflowFailException

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


def stop_jobs_of_run(project: str, model: str, airflow_run_id: str) -> list[str]:
    """Stop this Airflow run's SageMaker jobs that are still in progress (a run that timed out or
    failed must not leave a job running); returns what was stopped."""
    from mlops_core import names

    sm = aws.client("sagemaker")
    prefix = names.run_name_prefix(project, model)
    stopped = []
    kinds = (
        ("list_training_jobs", "TrainingJobSummaries", "TrainingJobName", "TrainingJobArn", "stop_training_job"),
        (
            "list_processing_jobs",
            "ProcessingJobSummaries",
            "ProcessingJobName",
            "ProcessingJobArn",
            "stop_processing_job",
        ),
    )
    for operation, result_key, name_key, arn_key, stop in kinds:
        pages = sm.get_paginator(operation).paginate(NameContains=prefix, StatusEquals="InProgress")
        for summary in (item for page in pages for item in page.get(result_key, [])):
            if not started_by(sm, summary[arn_key], airflow_run_id):
                continue
            try:
                getattr(sm, stop)(**{name_key: summary[name_key]})
                stopped.append(summary[name_key])
                log.info("stopped %s %s of run %s", operation.split("_", 1)[1][:-1], summary[name_key], airflow_run_id)
            except Exception:  # noqa: BLE001 - it may have ended meanwhile; stop the others anyway
                log.exception("could not stop %s", summary[name_key])
    return stopped


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


def quality_gate(run: dict) -> dict:
    """Read and check the candidate's evaluation, find the serving model's, and gate: one task for
    what the registration and the notice need (``evaluation``, ``production``, ``verdict``)."""
    from mlops_dags.gate import evaluate_gate

    config = load_config(run["project"], run["model"])
    evaluation = evaluation_result(run["evaluation_file"], config)
    production = production_evaluation(run)
    verdict = evaluate_gate(
        metric=config.gate.metric,
        greater_is_better=config.gate.greater_is_better,
        threshold=config.gate.threshold,
        max_regression=config.gate.max_regression,
        candidate_metrics=evaluation["metrics"],
        production_metrics=production.get("metrics"),
    )
    log.info("quality gate %s: %s", verdict.summary, "; ".join(verdict.reasons) or "all checks met")
    return {"evaluation": evaluation, "production": production, "verdict": verdict.to_dict()}


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


def _registration_uri(run: dict, config) -> str:
    from mlops_core import names

    return names.registration_uri(config.artifact_bucket, run["project"], run["model"], run["run_name"])


def _record_registration(run: dict, config, registered: dict) -> None:
    """Next to the run's artifacts: the package its model version is registered as, so that a
    deployment (and a retry of this task) finds it with one read."""
    bucket, key = aws.split_s3_uri(_registration_uri(run, config))
    document = {**registered, "run_name": run["run_name"], "model_version": run["model_version"]}
    aws.client("s3").put_object(
        Bucket=bucket, Key=key, Body=json.dumps(document).encode(), ContentType="application/json"
    )


def _registered_already(sm, group: str, run: dict, config) -> dict | None:
    """The package a previous try of this task registered: from the run's registration record, or,
    when the try died between CreateModelPackage and writing that record, the group's newest
    package (runs of one model never overlap, so it is this run's). O(1) in the model's history."""
    try:
        document = aws.read_s3_json(aws.client("s3"), _registration_uri(run, config))
        return {"package_arn": document["package_arn"], "status": document["status"]}
    except Exception as exc:
        if not aws.is_not_found(exc):
            raise
    newest = sm.list_model_packages(
        ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Descending", MaxResults=1
    ).get("ModelPackageSummaryList", [])
    if newest:
        package = sm.describe_model_package(ModelPackageName=newest[0]["ModelPackageArn"])
        if package.get("CustomerMetadataProperties", {}).get("run_name") == run["run_name"]:
            registered = {"package_arn": package["ModelPackageArn"], "status": package["ModelApprovalStatus"]}
            _record_registration(run, config, registered)
            return registered
    return None


def _drift_check_baselines(run: dict) -> dict:
    """CreateModelPackage's DriftCheckBaselines: the training data's baseline the drift check compares
    the endpoint's traffic with, when the evaluate job wrote one (an image without the template's
    ``monitor`` support writes none: its package has no baseline and its endpoint is not checked)."""
    statistics, constraints = baseline_files(run["output_uri"])
    s3 = aws.client("s3")
    for uri in (statistics, constraints):
        bucket, key = aws.split_s3_uri(uri)
        try:
            s3.head_object(Bucket=bucket, Key=key)
        except Exception as exc:
            if aws.error_code(exc) in {"404", "NoSuchKey", "NotFound"}:
                log.warning("no drift baseline at %s: registered without DriftCheckBaselines", uri)
                return {}
            raise
    return {
        "DriftCheckBaselines": {
            "ModelDataQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri": statistics},
                "Constraints": {"ContentType": "application/json", "S3Uri": constraints},
            }
        }
    }


def register(run: dict, evaluation: dict, production: dict, verdict: dict) -> dict:
    """Register the candidate in the model's package group with its lineage: pending manual
    approval when it passed the gate, Rejected (never deployable) when it did not."""
    from mlops_core import names

    config = load_config(run["project"], run["model"])
    sm = aws.client("sagemaker")
    trained = training_result(sm.describe_training_job(TrainingJobName=run["run_name"]))
    group = config.model_package_group_name
    _ensure_package_group(sm, group, run)
    # The evaluate job writes its files side by side (mlops_core.names): the registry shows the
    # model-quality file; the confusion-matrix image is linked from the package's metadata.
    evaluation_prefix = evaluation["uri"].rsplit("/", 1)[0]
    confusion_matrix = f"{evaluation_prefix}/{names.CONFUSION_MATRIX_FILE}"
    registered = _registered_already(sm, group, run, config)  # a task retry finds its own package
    if registered:
        return registered
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
        **_drift_check_baselines(run),
    )
    log.info("registered %s as %s: %s", run["run_name"], status, response["ModelPackageArn"])
    registered = {"package_arn": response["ModelPackageArn"], "status": status}
    _record_registration(run, config, registered)
    return registered


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
        drift=drift_notice(run, config) if run.get("reason") == "drift" else None,
    )
    return notify.send(notify.audience_of(config), note)


def drift_notice(run: dict, config) -> dict:
    """What a drift retraining's notice shows, from the summary the check that started it wrote
    into its own folder (the newest summary may be a later check's by now)."""
    from mlops_core import names
    from mlops_core.drift import DriftCheckSummary
    from mlops_dags.deployment import dashboard_url

    region = aws.region_of(aws.client("sagemaker"))
    check_uri = names.drift_check_uri(config.artifact_bucket, run["project"], run["model"], run["drift_check"])
    dashboard = config.endpoint.dashboard_name or names.dashboard_name(config.environment, run["project"], run["model"])
    notice = {
        "check_name": run["drift_check"],
        "names": run.get("drifted_features") or [],
        "violations_uri": check_uri + names.VIOLATIONS_FILE,
        "dashboard_url": dashboard_url(region, dashboard),
    }
    try:
        summary = DriftCheckSummary.model_validate(
            aws.read_s3_json(aws.client("s3"), check_uri + names.DRIFT_SUMMARY_FILE)
        )
    except Exception as exc:  # noqa: BLE001 - the notice goes out with what the conf says
        log.warning("drift summary of %s unreadable (%s): the notice names the features only", check_uri, exc)
        return notice
    bucket, key = aws.split_s3_uri(summary.violations_uri)
    return {
        **notice,
        "features": [feature.model_dump(mode="json") for feature in summary.drifted],
        "records": summary.records,
        "window_start": summary.window_start.isoformat(),
        "window_end": summary.window_end.isoformat(),
        "model_version": summary.model_version,
        "violations_uri": summary.violations_uri,
        "violations_url": f"https://s3.console.aws.amazon.com/s3/object/{bucket}?region={region}&prefix={key}",
    }
