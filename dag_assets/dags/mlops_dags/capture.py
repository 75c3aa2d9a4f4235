"""The endpoint's data capture (SageMaker ``DataCaptureConfig``), from the model's configuration.

Requests and responses are captured, as the drift check compares both with the training data;
content types the model template speaks are recorded as text (CSV or JSON) rather than base64,
so the captured records read as the requests did.
"""

from __future__ import annotations

CSV_CONTENT_TYPES = ("text/csv",)
JSON_CONTENT_TYPES = ("application/json", "application/jsonlines")


def data_capture_config(config) -> dict | None:
    """CreateEndpointConfig's ``DataCaptureConfig``, or None when the model turned capture off."""
    from mlops_core import names

    settings = config.data_capture
    if not settings.enabled:
        return None
    capture = {
        "EnableCapture": True,
        "InitialSamplingPercentage": settings.sampling_percentage,
        "DestinationS3Uri": config.data_capture_uri,
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {
            "CsvContentTypes": [t for t in names.SUPPORTED_CONTENT_TYPES if t in CSV_CONTENT_TYPES],
            "JsonContentTypes": [t for t in names.SUPPORTED_CONTENT_TYPES if t in JSON_CONTENT_TYPES],
        },
    }
    if config.kms_key_arn:
        capture["KmsKeyId"] = config.kms_key_arn
    return capture
