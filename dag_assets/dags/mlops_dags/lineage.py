"""What each run records in SageMaker ML Lineage Tracking, from data to endpoint.

Training & Evaluation records the training data (its URI and a fingerprint of its content: the
ETags of every object under it), the image (repository, tag and the digest ECR resolves the tag
to), the source commit, the training and evaluation jobs (actions), the model artifact and the
model package; the Deployment DAG adds the endpoint config and the endpoint (contexts), the time of
each deployment being the association's creation time.

Every call is find-or-create (an artifact by its source, an action or context by its name, an
association by its two ends), so a retried task records the same graph once. The same data
(same URI, same fingerprint) is one artifact shared by every run trained on it, which is what
``mlops lineage`` follows to answer "what else was trained on this data".

There is no provider operator or hook for these calls (the SageMaker Python SDK's lineage module
is not in MWAA's requirements and wraps the same boto3 calls), hence boto3.
"""

from __future__ import annotations

import hashlib
import logging

from mlops_dags import aws

log = logging.getLogger(__name__)


def _names():
    from mlops_core import names

    return names


def data_fingerprint(s3, uri: str) -> tuple[str, int]:
    """(sha256 of the sorted "key ETag" lines of every object under ``uri``, number of objects)."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    lines = sorted(
        f"{item['Key']} {item['ETag']}"
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
    )
    return hashlib.sha256("\n".join(lines).encode()).hexdigest(), len(lines)


def image_digest(image_uri: str, project: str, model: str) -> str | None:
    """The digest ECR resolves the image's tag to; None when ECR does not hold it (the tag is then
    all the lineage can name)."""
    tag = image_uri.rsplit(":", 1)[-1]
    ecr = aws.client("ecr")
    try:
        details = ecr.describe_images(
            repositoryName=_names().ecr_repository_name(project, model), imageIds=[{"imageTag": tag}]
        )["imageDetails"]
    except Exception as exc:
        if type(exc).__name__ not in ("ImageNotFoundException", "RepositoryNotFoundException"):
            raise
        log.warning("ECR holds no image %s: its lineage names the tag only", image_uri)
        return None
    return details[0]["imageDigest"] if details else None


def ensure_artifact(sm, uri: str, kind: str, properties: dict, fingerprint: str | None = None) -> str:
    source = {"SourceUri": uri}
    if fingerprint:
        source["SourceTypes"] = [{"SourceIdType": "Custom", "Value": fingerprint}]
    for page in sm.get_paginator("list_artifacts").paginate(SourceUri=uri, ArtifactType=kind):
        for summary in page.get("ArtifactSummaries", []):
            if summary["Source"].get("SourceTypes", []) == source.get("SourceTypes", []):
                return summary["ArtifactArn"]
    return sm.create_artifact(Source=source, ArtifactType=kind, Properties=_strings(properties))["ArtifactArn"]


def _ensure_named(sm, entity: str, name: str, kind: str, source_uri: str, properties: dict, **extra) -> str:
    """An action or a context (``entity``), found by its name or created."""
    try:
        return getattr(sm, f"describe_{entity.lower()}")(**{f"{entity}Name": name})[f"{entity}Arn"]
    except sm.exceptions.ResourceNotFound:
        pass
    request = {
        f"{entity}Name": name,
        "Source": {"SourceUri": source_uri},
        f"{entity}Type": kind,
        "Properties": _strings(properties),
        **extra,
    }
    return getattr(sm, f"create_{entity.lower()}")(**request)[f"{entity}Arn"]


def ensure_action(sm, name: str, kind: str, source_uri: str, properties: dict) -> str:
    return _ensure_named(sm, "Action", name, kind, source_uri, properties, Status="Completed")


def ensure_context(sm, name: str, kind: str, source_uri: str, properties: dict) -> str:
    return _ensure_named(sm, "Context", name, kind, source_uri, properties)


def associate(sm, source: str, destination: str, kind: str = "ContributedTo") -> None:
    if sm.list_associations(SourceArn=source, DestinationArn=destination)["AssociationSummaries"]:
        return
    sm.add_association(SourceArn=source, DestinationArn=destination, AssociationType=kind)


def _strings(properties: dict) -> dict[str, str]:
    return {k: str(v)[:2500] for k, v in properties.items() if v not in (None, "")}


def package_artifact(sm, package_arn: str, model_version: str) -> str:
    return ensure_artifact(sm, package_arn, _names().LINEAGE_MODEL_PACKAGE, {"model_version": model_version})


def record_training(run: dict, package: dict) -> dict:
    """Record one Training & Evaluation run's lineage; returns the ARNs it recorded, by role."""
    names = _names()
    sm, s3 = aws.client("sagemaker"), aws.client("s3")
    fingerprint, objects = data_fingerprint(s3, run["training_data"])
    repository, _, tag = run["image_uri"].rpartition(":")
    digest = image_digest(run["image_uri"], run["project"], run["model"])
    job = sm.describe_training_job(TrainingJobName=run["run_name"])
    evaluation = sm.describe_processing_job(ProcessingJobName=run["run_name"])
    arns = {
        "data": ensure_artifact(
            sm,
            run["training_data"],
            names.LINEAGE_DATASET,
            {"objects": objects, "fingerprint": "sha256 of the ETags of every object under the URI"},
            f"etags-sha256:{fingerprint}",
        ),
        "image": ensure_artifact(
            sm,
            f"{repository}@{digest}" if digest else run["image_uri"],
            names.LINEAGE_IMAGE,
            {"repository": repository, "tag": tag, "digest": digest or "unknown: not in ECR"},
        ),
        "train": ensure_action(
            sm,
            names.lineage_action_name(run["run_name"], "train"),
            names.LINEAGE_TRAINING_JOB,
            job["TrainingJobArn"],
            {"run_name": run["run_name"], "model_version": run["model_version"], "trained_at": run["trained_at"]},
        ),
        "evaluate": ensure_action(
            sm,
            names.lineage_action_name(run["run_name"], "evaluate"),
            names.LINEAGE_EVALUATION_JOB,
            evaluation["ProcessingJobArn"],
            {"run_name": run["run_name"]},
        ),
        "model": ensure_artifact(
            sm, job["ModelArtifacts"]["S3ModelArtifacts"], names.LINEAGE_MODEL, {"run_name": run["run_name"]}
        ),
        "package": package_artifact(sm, package["package_arn"], run["model_version"]),
    }
    if run["source_commit"]:
        arns["commit"] = ensure_artifact(
            sm, f"commit:{run['source_commit']}", names.LINEAGE_SOURCE_COMMIT, {"commit": run["source_commit"]}
        )
        associate(sm, arns["commit"], arns["train"])
    for source, destination, kind in (
        ("data", "train", "ContributedTo"),
        ("image", "train", "ContributedTo"),
        ("train", "model", "Produced"),
        ("model", "evaluate", "ContributedTo"),
        ("data", "evaluate", "ContributedTo"),
        ("model", "package", "ContributedTo"),
        ("evaluate", "package", "ContributedTo"),
        ("image", "package", "ContributedTo"),
    ):
        associate(sm, arns[source], arns[destination], kind)
    log.info("lineage of %s recorded: %s", run["run_name"], arns)
    return arns


def record_deployment(release: dict) -> dict:
    """Record what serves (after the smoke test passed): the package's artifact -> the endpoint
    config (named after the run) -> the endpoint."""
    names = _names()
    sm = aws.client("sagemaker")
    config_name = release["run_name"]
    config = sm.describe_endpoint_config(EndpointConfigName=config_name)
    endpoint = sm.describe_endpoint(EndpointName=release["endpoint_name"])
    if endpoint["EndpointConfigName"] != config_name:
        raise RuntimeError(
            f"{release['endpoint_name']} serves {endpoint['EndpointConfigName']}, not {config_name}: "
            "no deployment lineage to record"
        )
    arns = {
        "package": package_artifact(sm, release["package_arn"], release["model_version"]),
        "endpoint_config": ensure_context(
            sm,
            names.lineage_context_name(names.LINEAGE_ENDPOINT_CONFIG, config_name),
            names.LINEAGE_ENDPOINT_CONFIG,
            config["EndpointConfigArn"],
            {"model_version": release["model_version"], "run_name": release["run_name"]},
        ),
        "endpoint": ensure_context(
            sm,
            names.lineage_context_name(names.LINEAGE_ENDPOINT, release["endpoint_name"]),
            names.LINEAGE_ENDPOINT,
            endpoint["EndpointArn"],
            {"endpoint": release["endpoint_name"]},
        ),
    }
    associate(sm, arns["package"], arns["endpoint_config"])
    associate(sm, arns["endpoint_config"], arns["endpoint"], "AssociatedWith")
    log.info("lineage of the deployment of %s recorded: %s", release["model_version"], arns)
    return arns
