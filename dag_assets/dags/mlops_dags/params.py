"""Run configuration (``conf``) of the triggerable DAGs, as Airflow Params with JSON schemas.

Airflow validates a trigger's conf against these schemas before the run starts: a bad value is
rejected with a message naming the param (``Invalid input for param image_tag: ...``). The tasks
check again with mlops_core's rules, which give the same field-named errors for anything a JSON
schema cannot express (hash-shortened names, exactly-one-of).
"""

from __future__ import annotations

from mlops_core import names
from mlops_dags.compat import Param

# Release versions only: RunName rejects pre-releases and build metadata.
_SEMVER = r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
IMAGE_TAG_PATTERN = rf"^v?{_SEMVER}$"
# RunName.model_version: the image version plus the retraining number, e.g. 1.4.2+r3.
MODEL_VERSION_PATTERN = rf"^v?{_SEMVER}\+r[0-9]+$"
MODEL_PACKAGE_ARN_PATTERN = r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:[0-9]{12}:model-package/.+$"
S3_URI_PATTERN = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$"


def _name_param(field: str) -> Param:
    return Param(
        type="string",
        pattern=names.NAME_PATTERN.pattern,
        maxLength=names.NAME_MAX_LENGTH,
        title=field.capitalize(),
        description=f"{field.capitalize()} name: lowercase words joined by single hyphens.",
    )


def training_params() -> dict[str, Param]:
    return {
        "project": _name_param("project"),
        "model": _name_param("model"),
        "image_tag": Param(
            type="string",
            pattern=IMAGE_TAG_PATTERN,
            title="Image tag",
            description="Semantic version tag of the model image in its ECR repository (e.g. 1.4.2).",
        ),
        "data_path": Param(
            None,
            type=["null", "string"],
            pattern=S3_URI_PATTERN,
            title="Training data",
            description="S3 prefix of the training data; default: the model's prefix in the data bucket.",
        ),
        "hyperparameters": Param(
            {},
            type="object",
            additionalProperties={"type": ["string", "number", "boolean"]},
            title="Hyperparameter overrides",
            description="Merged over the hyperparameters of the model's pipeline configuration.",
        ),
        "retraining": Param(
            False,
            type="boolean",
            title="Retraining",
            description="Set by the retraining DAG: a new training of an image that already served.",
        ),
        "source_commit": Param(
            None,
            type=["null", "string"],
            maxLength=128,
            title="Source commit",
            description="Commit the image was built from, recorded in the model package's lineage.",
        ),
        # Set by the trigger Lambda when the model's drift alarm fires (lambda_src/dag_trigger, which
        # checks the same rules: reason "drift" with both fields, a retraining).
        "reason": Param(
            None,
            type=["null", "string"],
            enum=[None, "drift"],
            title="Reason",
            description='Why this run was started: "drift" for a drift retraining; empty otherwise.',
        ),
        "drifted_features": Param(
            [],
            type="array",
            items={"type": "string", "minLength": 1, "maxLength": 128},
            maxItems=100,
            title="Drifted features",
            description="The features the drift check found beyond the threshold (with reason drift).",
        ),
        "drift_check": Param(
            None,
            type=["null", "string"],
            pattern=names.SAGEMAKER_NAME_PATTERN.pattern,
            title="Drift check",
            description="The drift check that started this run; its summary gives the notice's statistics.",
        ),
    }


def deployment_params() -> dict[str, Param]:
    return {
        "project": _name_param("project"),
        "model": _name_param("model"),
        "model_version": Param(
            None,
            type=["null", "string"],
            pattern=MODEL_VERSION_PATTERN,
            title="Model version",
            description="Version of a registered candidate, e.g. 1.4.2+r3 (or give model_package_arn).",
        ),
        "model_package_arn": Param(
            None,
            type=["null", "string"],
            pattern=MODEL_PACKAGE_ARN_PATTERN,
            title="Model package ARN",
            description="ARN of the registered model package to deploy (or give model_version).",
        ),
    }


def retraining_params() -> dict[str, Param]:
    return {
        "ignore_interval": Param(
            False,
            type="boolean",
            title="Retrain now",
            description="Retrain every enabled, serving model now, whatever its retraining.interval_days "
            "(e.g. after new training data arrived). Scheduled runs leave it false.",
        ),
        "after": Param(
            None,
            type=["null", "string"],
            title="Continue after",
            description="Plan only the models after this project/model (set by the DAG's own follow-up run when "
            "more models are due than one run starts).",
        ),
    }


def drift_check_params() -> dict[str, Param]:
    """A manual Drift Check run's conf: check these models now (scheduled runs check every model due)."""
    return {
        field: Param(
            None,
            type=["null", "string"],
            pattern=names.NAME_PATTERN.pattern,
            maxLength=names.NAME_MAX_LENGTH,
            title=field.capitalize(),
            description=f"Check this {field} now (scheduled runs check every model that is due).",
        )
        for field in ("project", "model")
    }
