"""Data capture of the local endpoints, in SageMaker's own format and S3 layout.

What SageMaker documents and this module does
(https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture-endpoint.html,
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DataCaptureConfig.html):

- an endpoint config's ``DataCaptureConfig`` is validated as the API validates it (sampling 0-100,
  1-32 capture options of Input/Output, the destination and key patterns);
- ``InitialSamplingPercentage`` of the invocations are captured; each is one JSON line
  ``{"captureData": {"endpointInput": {...}, "endpointOutput": {...}}, "eventMetadata": {"eventId",
  "inferenceTime"}, "eventVersion": "0"}``, where input and output each carry ``observedContentType``,
  ``mode`` (INPUT/OUTPUT), ``data`` and ``encoding``: CSV or JSON for the content types listed in
  ``CaptureContentTypeHeader``, BASE64 for any other (and for all when no header is given);
- InvokeEndpoint's ``InferenceId``, when the caller gives one, "is added to the captured data"
  (API reference): ``eventMetadata.inferenceId``. A shadow variant's copy of a request is the same
  request, so its record carries the same ``inferenceId`` (the guide: data capture logs "requests and
  responses of your production and shadow variants"); that is how a comparison pairs them;
- records are written in batches under ``<DestinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/``
  (UTC hour of the invocation) as ``.jsonl`` objects, encrypted with ``KmsKeyId`` when given;
- SageMaker writes them as the model's execution role (the session it holds for the variant), so a
  role that may not write there, or use the key, loses its captures: logged and recorded as a
  ``DataCapture`` event ``Failed``, never an error for the caller (as on AWS, where the invocation
  succeeds whatever happens to its capture).

Batches are flushed when they reach ``flush_every_records`` or are ``flush_every_seconds`` old
(scenario section ``data_capture``), and every batch is flushed at shutdown and reset, so no
captured invocation is lost when local AWS stops.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from local_aws.sagemaker.core import ServiceCore
from local_aws.wire import AwsError

log = logging.getLogger("local_aws.sagemaker.data_capture")

EVENT_VERSION = "0"
CAPTURE_MODES = ("Input", "Output", "InputAndOutput")
DESTINATION_PATTERN = re.compile(r"^(https|s3)://([^/])/?(.*)$")
KMS_KEY_PATTERN = re.compile(r"^[a-zA-Z0-9:/_-]*$")


def _invalid(value: Any, member: str, constraint: str) -> AwsError:
    return AwsError(
        "ValidationException",
        f"1 validation error detected: Value '{value}' at 'dataCaptureConfig.{member}' failed to satisfy "
        f"constraint: {constraint}",
    )


def validate_capture_config(config: dict[str, Any] | None) -> None:
    """Refuse what CreateEndpointConfig refuses in ``DataCaptureConfig`` (API reference)."""
    if config is None:
        return
    sampling = config.get("InitialSamplingPercentage")
    if not isinstance(sampling, int) or not 0 <= sampling <= 100:
        raise _invalid(
            sampling,
            "initialSamplingPercentage",
            "Member must have value less than or equal to 100"
            if isinstance(sampling, int) and sampling > 100
            else "Member must have value greater than or equal to 0",
        )
    options = config.get("CaptureOptions") or []
    if not 1 <= len(options) <= 32:
        raise _invalid(options, "captureOptions", "Member must have length between 1 and 32")
    for index, option in enumerate(options):
        if option.get("CaptureMode") not in CAPTURE_MODES:
            raise _invalid(
                option.get("CaptureMode"),
                f"captureOptions.{index + 1}.member.captureMode",
                f"Member must satisfy enum value set: [{', '.join(CAPTURE_MODES)}]",
            )
    destination = config.get("DestinationS3Uri", "")
    if len(destination) > 512 or not DESTINATION_PATTERN.match(destination):
        raise _invalid(
            destination,
            "destinationS3Uri",
            "Member must satisfy regular expression pattern: ^(https|s3)://([^/])/?(.*)$",
        )
    key = config.get("KmsKeyId")
    if key is not None and (len(key) > 2048 or not KMS_KEY_PATTERN.match(key)):
        raise _invalid(key, "kmsKeyId", "Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]*$")
    header = config.get("CaptureContentTypeHeader") or {}
    for member in ("CsvContentTypes", "JsonContentTypes"):
        types = header.get(member)
        if types is not None and not 1 <= len(types) <= 10:
            raise _invalid(
                types,
                f"captureContentTypeHeader.{member[0].lower()}{member[1:]}",
                "Member must have length between 1 and 10",
            )


def capture_summary(config: dict[str, Any] | None) -> dict[str, Any] | None:
    """DescribeEndpoint's ``DataCaptureConfig`` (DataCaptureConfigSummary) for a deployed config."""
    if not config:
        return None
    enabled = config.get("EnableCapture", True)
    return {
        "EnableCapture": enabled,
        "CaptureStatus": "Started" if enabled else "Stopped",
        "CurrentSamplingPercentage": config["InitialSamplingPercentage"],
        "DestinationS3Uri": config["DestinationS3Uri"],
        "KmsKeyId": config.get("KmsKeyId", ""),
    }


def sampled(percentage: int, rng: random.Random) -> bool:
    """Whether one invocation is captured, at ``percentage`` of the traffic."""
    return rng.random() * 100 < percentage


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def encoded(body: bytes, content_type: str, header: dict[str, Any] | None) -> tuple[str, str]:
    """(data, encoding) of one captured body: as text for the content types the header lists as
    CSV or JSON, base64 for any other and for every type when there is no header."""
    media = _media_type(content_type)
    header = header or {}
    for encoding, member in (("CSV", "CsvContentTypes"), ("JSON", "JsonContentTypes")):
        if media in {_media_type(t) for t in header.get(member) or ()}:
            try:
                return body.decode("utf-8"), encoding
            except UnicodeDecodeError:
                break
    return base64.b64encode(body).decode("ascii"), "BASE64"


def capture_record(
    config: dict[str, Any],
    *,
    request: bytes,
    request_type: str,
    response: bytes,
    response_type: str,
    when: datetime,
    event_id: str,
    inference_id: str | None = None,
) -> dict[str, Any]:
    """One captured invocation, as a line of a capture file."""
    modes = {option["CaptureMode"] for option in config.get("CaptureOptions", [])}
    header = config.get("CaptureContentTypeHeader")
    data: dict[str, Any] = {}
    for member, mode, (body, content_type) in (
        ("endpointInput", "Input", (request, request_type)),
        ("endpointOutput", "Output", (response, response_type)),
    ):
        if modes & {mode, "InputAndOutput"}:
            text, encoding = encoded(body, content_type, header)
            data[member] = {
                "observedContentType": content_type,
                "mode": mode.upper(),
                "data": text,
                "encoding": encoding,
            }
    metadata = {"eventId": event_id, "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%SZ")}
    if inference_id:
        metadata["inferenceId"] = inference_id
    return {"captureData": data, "eventMetadata": metadata, "eventVersion": EVENT_VERSION}


def capture_key(destination: str, endpoint: str, variant: str, when: datetime, token: str) -> tuple[str, str]:
    """(bucket, key) of a capture file whose first record is from ``when`` (UTC):
    ``<destination>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm>-<ss>-<ms>-<token>.jsonl``."""
    bucket, _, prefix = destination.split("://", 1)[1].partition("/")
    folder = "/".join(p for p in (prefix.strip("/"), endpoint, variant, when.strftime("%Y/%m/%d/%H")) if p)
    name = f"{when.strftime('%M-%S')}-{when.microsecond // 1000:03d}-{token}.jsonl"
    return bucket, f"{folder}/{name}"


@dataclass
class _Batch:
    """Captured records bound for one capture file."""

    region: str
    endpoint: str
    variant: str
    config: dict[str, Any]
    credentials: dict[str, str] | None
    started: datetime
    opened: float = field(default_factory=time.monotonic)
    lines: list[str] = field(default_factory=list)


class CaptureBuffers:
    """Batches of captured records, flushed by a background thread when full or old enough, and
    all at once by :meth:`close`. ``write(batch)`` puts one batch's file."""

    def __init__(self, write: Any, settings: Any) -> None:
        self._write = write
        self._settings = settings  # () -> (flush_every_records, flush_every_seconds)
        self._lock = threading.Condition()
        self._batches: dict[tuple[Any, ...], _Batch] = {}
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="sagemaker-data-capture", daemon=True)
        self._thread.start()

    def add(self, key: tuple[Any, ...], new_batch: Any, line: str) -> None:
        with self._lock:
            batch = self._batches.get(key)
            if batch is None:
                batch = self._batches[key] = new_batch()
            batch.lines.append(line)
            if len(batch.lines) >= self._settings()[0]:
                self._lock.notify()

    def _due(self, everything: bool) -> list[_Batch]:
        records, seconds = self._settings()
        now = time.monotonic()
        due = [
            k for k, b in self._batches.items() if everything or len(b.lines) >= records or now - b.opened >= seconds
        ]
        return [self._batches.pop(k) for k in due]

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
                self._lock.wait(timeout=min(1.0, max(0.05, self._settings()[1] / 2)))
                batches = self._due(everything=False)
            self._flush(batches)

    def _flush(self, batches: list[_Batch]) -> None:
        for batch in batches:
            try:
                self._write(batch)
            except Exception:  # one batch's failure must not lose the others
                log.exception("could not write captured data of %s", batch.endpoint)

    def close(self) -> None:
        """Flush every batch, whatever its size or age, and stop the background thread."""
        with self._lock:
            self._closed = True
            batches = self._due(everything=True)
            self._lock.notify()
        self._flush(batches)
        self._thread.join(timeout=5)

    def pending(self) -> int:
        with self._lock:
            return sum(len(b.lines) for b in self._batches.values())


class DataCapture(ServiceCore):
    """The runtime's capture of invocations, written as the variant model's role."""

    _capture_buffers: CaptureBuffers | None = None
    _capture_rng = random.Random()  # noqa: S311 - sampling traffic, not a secret

    def _capture_settings(self) -> tuple[int, float]:
        section = self.scenario.snapshot().get("data_capture", {})
        return int(section.get("flush_every_records", 100)), float(section.get("flush_every_seconds", 10.0))

    def capture_invocation(
        self,
        region: str,
        endpoint: str,
        variant: str,
        target: dict[str, Any] | None,
        request: tuple[bytes, str],
        response: tuple[bytes, str],
        inference_id: str | None = None,
    ) -> None:
        """Capture one answered invocation if the serving config captures and it is sampled."""
        config = (target or {}).get("config", {}).get("DataCaptureConfig")
        if not config or not config.get("EnableCapture", True):
            return
        if not sampled(int(config["InitialSamplingPercentage"]), self._capture_rng):
            return
        # Production and shadow variants, in the order of their role sessions.
        names = [v["VariantName"] for v in target["variants"]]  # type: ignore[index]
        credentials = target["credentials"][names.index(variant)] if variant in names else None  # type: ignore[index]
        when = datetime.now(UTC)
        record = capture_record(
            config,
            request=request[0],
            request_type=request[1],
            response=response[0],
            response_type=response[1],
            when=when,
            event_id=str(uuid.uuid4()),
            inference_id=inference_id,
        )
        key = (region, endpoint, variant, json.dumps(config, sort_keys=True), when.strftime("%Y%m%d%H"))
        line = json.dumps(record, separators=(",", ":"))
        self._captures().add(
            key,
            lambda: _Batch(region, endpoint, variant, config, credentials, when),
            line,
        )

    def _captures(self) -> CaptureBuffers:
        with self.lock:
            if self._capture_buffers is None:
                self._capture_buffers = CaptureBuffers(self._write_capture, self._capture_settings)
            return self._capture_buffers

    def _write_capture(self, batch: _Batch) -> None:
        bucket, key = capture_key(
            batch.config["DestinationS3Uri"], batch.endpoint, batch.variant, batch.started, uuid.uuid4().hex
        )
        request: dict[str, Any] = {"Bucket": bucket, "Key": key, "Body": ("\n".join(batch.lines) + "\n").encode()}
        if batch.config.get("KmsKeyId"):
            request.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=batch.config["KmsKeyId"])
        try:
            self.client(batch.region, "s3", batch.credentials).put_object(**request)
        except Exception as error:  # noqa: BLE001 - the invocation succeeded; only its capture is lost
            log.warning("data capture of %s lost %d records: %s", batch.endpoint, len(batch.lines), error)
            self.events.record("DataCapture", batch.endpoint, "Failed", str(error))
            return
        log.info("data capture: wrote %d records to s3://%s/%s", len(batch.lines), bucket, key)
        self.events.record("DataCapture", batch.endpoint, "Written", f"s3://{bucket}/{key}")

    def close_captures(self) -> None:
        """Write every captured record not yet written (shutdown, reset)."""
        with self.lock:
            buffers, self._capture_buffers = self._capture_buffers, None
        if buffers is not None:
            buffers.close()
