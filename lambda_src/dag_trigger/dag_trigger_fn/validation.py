"""What the trigger Lambda accepts: two actions, validated strictly before anything reaches MWAA.

The DAG id must be in ``TRIGGERABLE_DAGS``; project and model follow the platform naming rules;
the run id is derived from the GitLab pipeline and job ids, so retrying a request is idempotent.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from mlops_core.names import SAGEMAKER_NAME_PATTERN, TRIGGERABLE_DAGS, InvalidName, validate_name

# GitLab ids are positive 64-bit integers; today they are ~10-11 digits. 36**8 keeps each id at
# most 8 base-36 characters, so the run id fits MWAA's 64-character REST path limit (below).
MAX_CI_ID = 36**8 - 1
MAX_EVENT_BYTES = 64 * 1024
MAX_CONF_BYTES = 16 * 1024
RUN_ID_PATTERN = re.compile(r"^gl-[0-9a-z]{1,8}-[0-9a-z]{1,8}$")
# InvokeRestApi rejects a Path longer than 64 characters.
MWAA_MAX_PATH = 64
CONF_KEY_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if number == 0:
            return out


def run_id_for(pipeline_id: int, job_id: int) -> str:
    """Airflow run id of the DAG run a GitLab job starts: the same job always gets the same id."""
    return f"gl-{_base36(pipeline_id)}-{_base36(job_id)}"


def dag_runs_path(dag_id: str, run_id: str | None = None) -> str:
    path = f"/dags/{dag_id}/dagRuns" + (f"/{run_id}" if run_id else "")
    if len(path) > MWAA_MAX_PATH:  # guarded by the validation limits; a bug if it ever fires
        raise ValueError(f"REST path {path!r} exceeds MWAA's {MWAA_MAX_PATH}-character limit")
    return path


def _allowed_dag(value: str) -> str:
    if value not in TRIGGERABLE_DAGS:
        raise PydanticCustomError(
            "dag_not_allowed",
            "DAG is not triggerable; allowed: {allowed}",
            {"allowed": ", ".join(TRIGGERABLE_DAGS)},
        )
    return value


def _platform_name(field: str, value: Any) -> str:
    try:
        return validate_name(field, value)
    except InvalidName:
        raise PydanticCustomError(
            "invalid_name",
            "must be lowercase letters and digits in words joined by single hyphens, at most 40 characters",
        ) from None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# A drift retraining's conf (dag_trigger_fn.drift): why it runs and what drifted. Feature names are
# the training data's column names; the check name is the drift check's processing job name.
REASON_DRIFT = "drift"
MAX_DRIFTED_FEATURES = 100
MAX_FEATURE_NAME = 128


class RunConf(_Strict):
    """The DAG run's conf. project and model are checked here because the run id, the
    idempotency check and every AWS name depend on them, and the drift fields because the
    cool-down and the retraining's notice depend on them; the other keys are the DAG's own
    parameters, validated by the DAG's Params when the run starts."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)

    project: str
    model: str
    reason: Literal["drift"] | None = None
    drifted_features: (
        Annotated[
            list[Annotated[str, Field(min_length=1, max_length=MAX_FEATURE_NAME)]],
            Field(min_length=1, max_length=MAX_DRIFTED_FEATURES),
        ]
        | None
    ) = None
    drift_check: Annotated[str, Field(pattern=SAGEMAKER_NAME_PATTERN.pattern)] | None = None

    @field_validator("project", "model")
    @classmethod
    def _names(cls, value: str, info: Any) -> str:
        return _platform_name(info.field_name, value)

    @model_validator(mode="after")
    def _drift_fields_together(self) -> RunConf:
        drift_fields = (self.drifted_features, self.drift_check)
        if self.reason == REASON_DRIFT:
            if any(value is None for value in drift_fields):
                raise PydanticCustomError(
                    "drift_conf", "reason 'drift' needs drifted_features (at least one) and drift_check"
                )
            if (self.model_extra or {}).get("retraining") is not True:
                raise PydanticCustomError("drift_conf", "reason 'drift' is a retraining: set retraining to true")
        elif any(value is not None for value in drift_fields):
            raise PydanticCustomError("drift_conf", "drifted_features and drift_check go with reason 'drift' only")
        return self

    def as_json(self) -> dict[str, Any]:
        # Unset drift fields stay out: a CI trigger's conf is what CI sent.
        return self.model_dump(mode="json", exclude_unset=True)


_EXTRA_VALUE = TypeAdapter(JsonValue)


class TriggerRequest(_Strict):
    action: Literal["trigger"]
    dag_id: Annotated[str, Field(max_length=250)]
    pipeline_id: Annotated[int, Field(gt=0, le=MAX_CI_ID)]
    job_id: Annotated[int, Field(gt=0, le=MAX_CI_ID)]
    conf: RunConf

    @field_validator("dag_id")
    @classmethod
    def _dag(cls, value: str) -> str:
        return _allowed_dag(value)

    @field_validator("conf", mode="before")
    @classmethod
    def _conf_shape(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value  # the model validation reports the type error
        for key in value:
            if not isinstance(key, str) or not CONF_KEY_PATTERN.fullmatch(key):
                raise PydanticCustomError("invalid_conf_key", "keys must be identifiers of at most 64 characters")
        try:
            _EXTRA_VALUE.validate_python(value, strict=True)
            encoded = json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
        except (ValidationError, ValueError, TypeError, RecursionError):
            raise PydanticCustomError("invalid_conf", "must be a JSON object of UTF-8 text") from None
        if len(encoded) > MAX_CONF_BYTES:
            raise PydanticCustomError(
                "conf_too_large", "is larger than {limit} bytes as JSON", {"limit": MAX_CONF_BYTES}
            )
        return value

    @property
    def run_id(self) -> str:
        return run_id_for(self.pipeline_id, self.job_id)


class StatusRequest(_Strict):
    action: Literal["status"]
    dag_id: Annotated[str, Field(max_length=250)]
    dag_run_id: Annotated[str, Field(max_length=20, pattern=RUN_ID_PATTERN.pattern)]

    @field_validator("dag_id")
    @classmethod
    def _dag(cls, value: str) -> str:
        return _allowed_dag(value)

    @property
    def run_id(self) -> str:
        return self.dag_run_id


Request = Annotated[TriggerRequest | StatusRequest, Field(discriminator="action")]
REQUEST = TypeAdapter(Request)


class RequestError(Exception):
    """A request the Lambda refuses; carries the structured error returned to the caller."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field

    def as_response(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            error["field"] = self.field
        return {"ok": False, "status": self.status, "error": error}


def _field_of(loc: tuple[Any, ...]) -> str:
    # The discriminated union puts the action's name first ("trigger.conf.model"): drop it.
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("trigger", "status"):
        parts = parts[1:]
    return ".".join(parts) or "action"


def parse_request(event: Any) -> TriggerRequest | StatusRequest:
    """Validate a Lambda event; raise RequestError naming the first offending field."""
    if not isinstance(event, dict):
        raise RequestError(400, "invalid_request", "event: must be a JSON object", "event")
    try:
        size = len(json.dumps(event, ensure_ascii=False, default=str).encode("utf-8", "replace"))
    except (ValueError, TypeError, RecursionError):
        raise RequestError(400, "invalid_request", "event: must be JSON", "event") from None
    if size > MAX_EVENT_BYTES:
        raise RequestError(413, "request_too_large", f"event: larger than {MAX_EVENT_BYTES} bytes", "event")
    try:
        return REQUEST.validate_python(event)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        field = _field_of(first["loc"])
        if first["type"] == "union_tag_invalid" or first["type"] == "union_tag_not_found":
            field, message = "action", "must be 'trigger' or 'status'"
        else:
            message = first["msg"]
        if first["type"] == "dag_not_allowed":
            raise RequestError(403, "dag_not_allowed", f"{field}: {message}", field) from None
        raise RequestError(400, "invalid_request", f"{field}: {message}", field) from None
