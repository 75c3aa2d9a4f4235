"""List* semantics as SageMaker has them: filters, per-call sort defaults, MaxResults and NextToken.

moto 5.2.5 ignores NameContains, sorting and paging on several of these calls; pipeline code that
forgets to paginate (AWS returns 10 items by default) must fail here as it would on AWS.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from local_aws.wire import AwsError

DEFAULT_MAX_RESULTS = 10
MAX_MAX_RESULTS = 100


@dataclass(frozen=True)
class ListSpec:
    list_key: str  # e.g. "TrainingJobSummaries"
    name_key: str  # e.g. "TrainingJobName"
    sort_fields: dict[str, str]  # SortBy value -> record field
    default_order: str  # "Ascending" | "Descending"
    summary: Callable[[dict[str, Any]], dict[str, Any]]
    status_key: str | None = None  # field compared with StatusEquals


def list_page(records: Iterable[dict[str, Any]], params: dict[str, Any], spec: ListSpec) -> dict[str, Any]:
    items = [r for r in records if _matches(r, params, spec)]

    sort_by = params.get("SortBy", "CreationTime")
    if sort_by not in spec.sort_fields:
        raise AwsError(
            "ValidationException",
            f"1 validation error detected: Value '{sort_by}' at 'sortBy' failed to satisfy constraint: "
            f"Member must satisfy enum value set: {sorted(spec.sort_fields)}",
        )
    order = params.get("SortOrder", spec.default_order)
    if order not in ("Ascending", "Descending"):
        raise AwsError("ValidationException", f"Value '{order}' at 'sortOrder' failed to satisfy constraint")
    field = spec.sort_fields[sort_by]
    # Secondary key on the name keeps pages stable when timestamps tie.
    items.sort(key=lambda r: (r.get(field) or 0, r[spec.name_key]), reverse=order == "Descending")

    max_results = int(params.get("MaxResults", DEFAULT_MAX_RESULTS))
    if not 1 <= max_results <= MAX_MAX_RESULTS:
        raise AwsError(
            "ValidationException",
            f"1 validation error detected: Value '{max_results}' at 'maxResults' failed to satisfy "
            f"constraint: Member must have value less than or equal to {MAX_MAX_RESULTS}",
        )
    offset = _decode_token(params.get("NextToken"))
    page = items[offset : offset + max_results]
    result: dict[str, Any] = {spec.list_key: [spec.summary(r) for r in page]}
    if offset + max_results < len(items):
        result["NextToken"] = _encode_token(offset + max_results)
    return result


def _matches(record: dict[str, Any], params: dict[str, Any], spec: ListSpec) -> bool:
    contains = params.get("NameContains")
    if contains and contains.lower() not in record[spec.name_key].lower():
        return False
    status = params.get("StatusEquals")
    if status and spec.status_key and record.get(spec.status_key) != status:
        return False
    for param, field, after in (
        ("CreationTimeAfter", "CreationTime", True),
        ("CreationTimeBefore", "CreationTime", False),
        ("LastModifiedTimeAfter", "LastModifiedTime", True),
        ("LastModifiedTimeBefore", "LastModifiedTime", False),
    ):
        bound = params.get(param)
        if bound is None or record.get(field) is None:
            continue
        if after and not record[field] > float(bound):
            return False
        if not after and not record[field] < float(bound):
            return False
    return True


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        return int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
    except (ValueError, KeyError, TypeError) as exc:
        raise AwsError("ValidationException", "Invalid pagination token given") from exc
