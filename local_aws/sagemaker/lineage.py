"""SageMaker ML Lineage Tracking: artifacts, actions, contexts, associations and QueryLineage.

moto 5.2.5 implements none of these calls. What this module holds to, from the API reference
(botocore's service model carries its constraints) and the Service Authorization Reference:

- names (actions, contexts, artifacts' optional name) match ``^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,119}``;
  an action or context is identified by its name (ARN ``action/<name>``, ``context/<name>``); an
  artifact by the hash of its source (ARN ``artifact/<hash of source>``), so the same source cannot
  be created twice, and a changed content fingerprint (``SourceTypes``) is a new artifact;
- ``Properties`` hold at most 30 entries of at most 2,500 characters; ``SourceUri`` at most 2,048;
  ``SourceIdType`` is MD5Hash, S3ETag, S3Version or Custom; ``Status`` of an action is one of
  Unknown, InProgress, Completed, Failed, Stopping, Stopped;
- AddAssociation needs both ends to exist (``ResourceNotFound``) and an ``AssociationType`` of
  ContributedTo, AssociatedWith, DerivedFrom, Produced or SameAs;
- QueryLineage starts from at most one ARN (``ResourceNotFound`` if unknown), walks ``Ascendants``,
  ``Descendants`` or ``Both`` up to ``MaxDepth`` (at most 10) and pages its vertices by
  ``MaxResults`` (at most 50); vertices carry ``Arn``, ``Type`` (the entity's own type) and
  ``LineageType`` (Artifact, Action, Context), edges ``SourceArn``, ``DestinationArn`` and
  ``AssociationType``.

Not implemented (refused, so a caller never silently gets less): QueryLineage filters other than
``Types`` and ``LineageTypes``, trial components and experiments as association ends.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from typing import Any

from local_aws.sagemaker.core import ACCOUNT_ID, ServiceCore
from local_aws.sagemaker.listing import _decode_token, _encode_token
from local_aws.wire import AwsError

ENTITY_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,119}$")
ENTITY_ARN = re.compile(r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:(artifact|action|context)/(.+)$")
SOURCE_ID_TYPES = ("MD5Hash", "S3ETag", "S3Version", "Custom")
ACTION_STATUSES = ("Unknown", "InProgress", "Completed", "Failed", "Stopping", "Stopped")
ASSOCIATION_TYPES = ("ContributedTo", "AssociatedWith", "DerivedFrom", "Produced", "SameAs")
DIRECTIONS = ("Both", "Ascendants", "Descendants")
MAX_PROPERTIES, MAX_PROPERTY_VALUE, MAX_SOURCE_URI = 30, 2500, 2048
MAX_DEPTH, MAX_QUERY_RESULTS, DEFAULT_QUERY_RESULTS = 10, 50, 10
LINEAGE_TYPES = {"artifact": "Artifact", "action": "Action", "context": "Context"}
_KIND_TYPE_KEY = {"artifact": "ArtifactType", "action": "ActionType", "context": "ContextType"}


def artifact_id(source: dict[str, Any]) -> str:
    """The id an artifact's ARN ends with: a hash of its source (URI and source types)."""
    canonical = json.dumps(
        {
            "uri": source.get("SourceUri"),
            "types": sorted((t["SourceIdType"], t["Value"]) for t in source.get("SourceTypes", [])),
        },
        sort_keys=True,
    )
    return hashlib.md5(canonical.encode(), usedforsecurity=False).hexdigest()


def _invalid(value: Any, member: str, constraint: str) -> AwsError:
    return AwsError(
        "ValidationException",
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {constraint}",
    )


def _name(value: Any, member: str) -> str:
    if not isinstance(value, str) or not ENTITY_NAME.fullmatch(value):
        raise _invalid(
            value, member, "Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,119}"
        )
    return value


def _properties(value: dict[str, str] | None) -> dict[str, str]:
    value = value or {}
    if len(value) > MAX_PROPERTIES:
        raise _invalid(value, "properties", f"Member must have length less than or equal to {MAX_PROPERTIES}")
    for key, item in value.items():
        if len(str(item)) > MAX_PROPERTY_VALUE:
            raise _invalid(
                item, f"properties.{key}", f"Member must have length less than or equal to {MAX_PROPERTY_VALUE}"
            )
    return dict(value)


def _source(value: dict[str, Any], member: str) -> dict[str, Any]:
    if len(value.get("SourceUri", "")) > MAX_SOURCE_URI:
        raise _invalid(
            value["SourceUri"], f"{member}.sourceUri", f"Member must have length less than or equal to {MAX_SOURCE_URI}"
        )
    for index, item in enumerate(value.get("SourceTypes", [])):
        if item.get("SourceIdType") not in SOURCE_ID_TYPES:
            raise _invalid(
                item.get("SourceIdType"),
                f"{member}.sourceTypes.{index + 1}.member.sourceIdType",
                f"Member must satisfy enum value set: [{', '.join(SOURCE_ID_TYPES)}]",
            )
    return dict(value)


class LineageOperations(ServiceCore):
    def _lineage(self, region: str) -> dict[str, Any]:
        with self.lock:
            state = self.region(region)
            if not hasattr(state, "lineage"):
                state.lineage = {"entities": {}, "associations": {}}  # type: ignore[attr-defined]
            return state.lineage  # type: ignore[attr-defined,no-any-return]

    def _entity(self, region: str, arn: str) -> dict[str, Any]:
        found = self._lineage(region)["entities"].get(arn)
        if found is None:
            raise AwsError("ResourceNotFound", f"Entity {arn} does not exist.")
        return found

    def _create(self, region: str, kind: str, resource_id: str, record: dict[str, Any]) -> str:
        arn = f"arn:aws:sagemaker:{region}:{ACCOUNT_ID}:{kind}/{resource_id.lower()}"
        now = time.time()
        tags = record.pop("Tags", None)
        with self.lock:
            entities = self._lineage(region)["entities"]
            if arn in entities:
                raise AwsError("ValidationException", f"{LINEAGE_TYPES[kind]} {arn} already exists.")
            entities[arn] = {
                **record,
                "_kind": kind,
                f"{LINEAGE_TYPES[kind]}Arn": arn,
                "CreationTime": now,
                "LastModifiedTime": now,
            }
            self.store_tags(region, arn, tags)
        return arn

    # -- artifacts, actions, contexts ------------------------------------------------------------
    def op_CreateArtifact(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        if "ArtifactName" in p:
            _name(p["ArtifactName"], "artifactName")
        source = _source(p["Source"], "source")
        record = {k: v for k, v in p.items() if k not in ("Source", "Properties")}
        record.update(Source=source, Properties=_properties(p.get("Properties")))
        return {"ArtifactArn": self._create(region, "artifact", artifact_id(source), record)}

    def op_CreateAction(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        name = _name(p["ActionName"], "actionName")
        if p.get("Status", "Unknown") not in ACTION_STATUSES:
            raise _invalid(p["Status"], "status", f"Member must satisfy enum value set: [{', '.join(ACTION_STATUSES)}]")
        record = {k: v for k, v in p.items() if k not in ("Source", "Properties")}
        record.update(Source=_source(p["Source"], "source"), Properties=_properties(p.get("Properties")))
        return {"ActionArn": self._create(region, "action", name, record)}

    def op_CreateContext(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        name = _name(p["ContextName"], "contextName")
        record = {k: v for k, v in p.items() if k not in ("Source", "Properties")}
        record.update(Source=_source(p["Source"], "source"), Properties=_properties(p.get("Properties")))
        return {"ContextArn": self._create(region, "context", name, record)}

    def _by_name_or_arn(self, region: str, kind: str, value: str) -> dict[str, Any]:
        arn = value if value.startswith("arn:") else f"arn:aws:sagemaker:{region}:{ACCOUNT_ID}:{kind}/{value.lower()}"
        try:
            return self._public(self._entity(region, arn))
        except AwsError:
            raise AwsError("ResourceNotFound", f"{LINEAGE_TYPES[kind]} {arn} does not exist.") from None

    @staticmethod
    def _public(record: dict[str, Any]) -> dict[str, Any]:
        return json.loads(json.dumps({k: v for k, v in record.items() if not k.startswith("_")}))

    def op_DescribeArtifact(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        return self._by_name_or_arn(region, "artifact", p["ArtifactArn"])

    def op_DescribeAction(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        return self._by_name_or_arn(region, "action", p["ActionName"])

    def op_DescribeContext(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        return self._by_name_or_arn(region, "context", p["ContextName"])

    def _list(self, region: str, kind: str, p: dict[str, Any], key: str) -> dict[str, Any]:
        type_key = _KIND_TYPE_KEY[kind]
        with self.lock:
            found = [
                self._public(e)
                for e in self._lineage(region)["entities"].values()
                if e["_kind"] == kind
                and (not p.get("SourceUri") or e["Source"].get("SourceUri") == p["SourceUri"])
                and (not p.get(type_key) or e.get(type_key) == p[type_key])
            ]
        descending = p.get("SortOrder", "Descending") == "Descending"
        found.sort(key=lambda e: (e["CreationTime"], e[f"{LINEAGE_TYPES[kind]}Arn"]), reverse=descending)
        return _page(found, p, key, DEFAULT_QUERY_RESULTS, 100)

    def op_ListArtifacts(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        return self._list(region, "artifact", p, "ArtifactSummaries")

    def op_ListActions(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        return self._list(region, "action", p, "ActionSummaries")

    def op_ListContexts(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        return self._list(region, "context", p, "ContextSummaries")

    # -- associations ----------------------------------------------------------------------------
    def _end(self, region: str, arn: str, member: str) -> dict[str, Any]:
        if not isinstance(arn, str) or len(arn) > 256 or not ENTITY_ARN.match(arn):
            raise _invalid(
                arn,
                member,
                "Member must satisfy regular expression pattern: arn:aws[a-z\\-]*:sagemaker:[a-z0-9\\-]*:[0-9]{12}:"
                "(experiment|experiment-trial-component|artifact|action|context)/.*",
            )
        return self._entity(region, arn)

    def op_AddAssociation(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        kind = p.get("AssociationType", "ContributedTo")
        if kind not in ASSOCIATION_TYPES:
            raise _invalid(
                kind, "associationType", f"Member must satisfy enum value set: [{', '.join(ASSOCIATION_TYPES)}]"
            )
        with self.lock:
            source = self._end(region, p["SourceArn"], "sourceArn")
            destination = self._end(region, p["DestinationArn"], "destinationArn")
            self._lineage(region)["associations"].setdefault(
                (p["SourceArn"], p["DestinationArn"]),
                {
                    "SourceArn": p["SourceArn"],
                    "DestinationArn": p["DestinationArn"],
                    "SourceType": _type_of(source),
                    "DestinationType": _type_of(destination),
                    "AssociationType": kind,
                    "SourceName": source.get(f"{LINEAGE_TYPES[source['_kind']]}Name", ""),
                    "DestinationName": destination.get(f"{LINEAGE_TYPES[destination['_kind']]}Name", ""),
                    "CreationTime": time.time(),
                },
            )
        return {"SourceArn": p["SourceArn"], "DestinationArn": p["DestinationArn"]}

    def op_ListAssociations(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            found = [
                {k: v for k, v in a.items() if v != ""}
                for a in self._lineage(region)["associations"].values()
                if all(
                    not p.get(k) or a[k] == p[k]
                    for k in ("SourceArn", "DestinationArn", "SourceType", "DestinationType", "AssociationType")
                )
            ]
        descending = p.get("SortOrder", "Descending") == "Descending"
        found.sort(key=lambda a: (a["CreationTime"], a["SourceArn"], a["DestinationArn"]), reverse=descending)
        return _page(found, p, "AssociationSummaries", DEFAULT_QUERY_RESULTS, 100)

    # -- QueryLineage ----------------------------------------------------------------------------
    def op_QueryLineage(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        starts = p.get("StartArns") or []
        if len(starts) > 1:
            raise _invalid(starts, "startArns", "Member must have length less than or equal to 1")
        direction = p.get("Direction", "Both")
        if direction not in DIRECTIONS:
            raise _invalid(direction, "direction", f"Member must satisfy enum value set: [{', '.join(DIRECTIONS)}]")
        depth = int(p.get("MaxDepth", MAX_DEPTH))
        if depth > MAX_DEPTH:
            raise _invalid(depth, "maxDepth", f"Member must have value less than or equal to {MAX_DEPTH}")
        filters = p.get("Filters") or {}
        unsupported = set(filters) - {"Types", "LineageTypes"}
        if unsupported:
            raise AwsError(
                "ValidationException", f"local AWS does not implement QueryLineage filters {sorted(unsupported)}"
            )
        with self.lock:
            for arn in starts:
                self._entity(region, arn)
            vertices, edges = self._walk(region, starts, direction, depth)
            entities = self._lineage(region)["entities"]
            found = [
                {"Arn": arn, "Type": _type_of(entities[arn]), "LineageType": LINEAGE_TYPES[entities[arn]["_kind"]]}
                for arn in vertices
                if p.get("IncludeSource") or arn not in starts
            ]
        found = [
            v
            for v in found
            if (not filters.get("Types") or v["Type"] in filters["Types"])
            and (not filters.get("LineageTypes") or v["LineageType"] in filters["LineageTypes"])
        ]
        page = _page(found, p, "Vertices", DEFAULT_QUERY_RESULTS, MAX_QUERY_RESULTS)
        if p.get("IncludeEdges", True):
            page["Edges"] = edges
        return page

    def _walk(
        self, region: str, starts: list[str], direction: str, depth: int
    ) -> tuple[list[str], list[dict[str, Any]]]:
        associations = list(self._lineage(region)["associations"].values())
        seen = list(starts)
        edges: list[dict[str, Any]] = []
        frontier = list(starts)
        for _ in range(depth):
            following = []
            for arn in frontier:
                for a in associations:
                    ends = []
                    if direction in ("Both", "Descendants") and a["SourceArn"] == arn:
                        ends.append(a["DestinationArn"])
                    if direction in ("Both", "Ascendants") and a["DestinationArn"] == arn:
                        ends.append(a["SourceArn"])
                    for end in ends:
                        edge = {k: a[k] for k in ("SourceArn", "DestinationArn", "AssociationType")}
                        if edge not in edges:
                            edges.append(edge)
                        if end not in seen:
                            seen.append(end)
                            following.append(end)
            frontier = following
        return seen, edges


def _type_of(entity: dict[str, Any]) -> str:
    return str(entity.get(_KIND_TYPE_KEY[entity["_kind"]], ""))


def _page(items: list[dict[str, Any]], p: dict[str, Any], key: str, default: int, maximum: int) -> dict[str, Any]:
    size = int(p.get("MaxResults", default))
    if not 1 <= size <= maximum:
        raise _invalid(size, "maxResults", f"Member must have value less than or equal to {maximum}")
    offset = _decode_token(p.get("NextToken"))
    result: dict[str, Any] = {key: items[offset : offset + size]}
    if offset + size < len(items):
        result["NextToken"] = _encode_token(offset + size)
    return result
