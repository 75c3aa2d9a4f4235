"""``mlops lineage``: what data and code produced what is serving, and what else was trained on
that data, as a tree read from SageMaker ML Lineage Tracking (QueryLineage), as the DAGs recorded it
(dag_assets/dags/mlops_dags/lineage.py).

An endpoint is found by its context (``mlops-<endpoint>-endpoint``); a model version
(``project/model@1.4.2+r3``) by its package in the model's package group, then the package's
artifact. The tree goes from the start towards its inputs (the edges' sources); a model version
also lists where it was deployed. Entities reached twice are printed once, then referred to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3

from mlops_cli.errors import EXIT_USAGE, CliError
from mlops_core import names

VERSION_TARGET = re.compile(r"^(?P<project>[^/@]+)/(?P<model>[^/@]+)@v?(?P<version>.+)$")
_DESCRIBE = {
    "Artifact": ("describe_artifact", "ArtifactArn"),
    "Action": ("describe_action", "ActionName"),
    "Context": ("describe_context", "ContextName"),
}


@dataclass
class Graph:
    vertices: dict[str, dict[str, Any]] = field(default_factory=dict)
    edges: list[dict[str, str]] = field(default_factory=list)

    def sources_of(self, arn: str) -> list[dict[str, str]]:
        return sorted(
            (e for e in self.edges if e["DestinationArn"] == arn), key=lambda e: self.vertices[e["SourceArn"]]["Type"]
        )

    def destinations_of(self, arn: str) -> list[dict[str, str]]:
        return [e for e in self.edges if e["SourceArn"] == arn]


def query(sm: Any, start: str, direction: str, depth: int = 10, types: list[str] | None = None) -> Graph:
    """Every vertex and edge QueryLineage gives from ``start``, page by page."""
    graph, token = Graph(), None
    while True:
        request: dict[str, Any] = {
            "StartArns": [start],
            "Direction": direction,
            "IncludeEdges": True,
            "MaxDepth": depth,
            "MaxResults": 50,
        }
        if types:
            request["Filters"] = {"Types": types}
        if token:
            request["NextToken"] = token
        page = sm.query_lineage(**request)
        graph.vertices.update({v["Arn"]: v for v in page.get("Vertices", [])})
        graph.edges += [e for e in page.get("Edges", []) if e not in graph.edges]
        token = page.get("NextToken")
        if not token:
            return graph


def _start_of_endpoint(sm: Any, endpoint: str) -> dict[str, Any]:
    try:
        return sm.describe_context(ContextName=names.lineage_context_name(names.LINEAGE_ENDPOINT, endpoint))
    except sm.exceptions.ResourceNotFound as exc:
        raise CliError(
            f"no lineage for endpoint {endpoint!r}: no deployment recorded it (is the name right? "
            "a model version is written project/model@1.4.2+r3)",
            EXIT_USAGE,
        ) from exc


def _start_of_version(sm: Any, project: str, model: str, version: str) -> dict[str, Any]:
    group = names.model_package_group_name(names.validate_name("project", project), names.validate_name("model", model))
    for page in sm.get_paginator("list_model_packages").paginate(ModelPackageGroupName=group):
        for summary in page.get("ModelPackageSummaryList", []):
            package = sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            if package.get("CustomerMetadataProperties", {}).get("model_version") == version:
                found = sm.list_artifacts(
                    SourceUri=package["ModelPackageArn"], ArtifactType=names.LINEAGE_MODEL_PACKAGE
                )
                if found["ArtifactSummaries"]:
                    return sm.describe_artifact(ArtifactArn=found["ArtifactSummaries"][0]["ArtifactArn"])
                raise CliError(f"{project}/{model}@{version} was registered before its lineage was recorded")
    raise CliError(f"{project}/{model}@{version} is not registered (package group {group})", EXIT_USAGE)


class Describer:
    """One Describe* call per entity, remembered."""

    def __init__(self, sm: Any) -> None:
        self.sm = sm
        self.cache: dict[str, dict[str, Any]] = {}

    def __call__(self, vertex: dict[str, Any]) -> dict[str, Any]:
        arn = vertex["Arn"]
        if arn not in self.cache:
            method, key = _DESCRIBE[vertex["LineageType"]]
            value = arn if key == "ArtifactArn" else arn.rsplit("/", 1)[-1]
            self.cache[arn] = getattr(self.sm, method)(**{key: value})
        return self.cache[arn]


def label(vertex: dict[str, Any], entity: dict[str, Any]) -> str:
    """``<Type> <source> (<what matters about it>)``."""
    source = entity.get("Source", {})
    uri = source.get("SourceUri", vertex["Arn"])
    properties = entity.get("Properties", {})
    kind = vertex["Type"]
    details = []
    if kind == names.LINEAGE_DATASET:
        fingerprint = next((t["Value"] for t in source.get("SourceTypes", [])), "")
        details = [
            f"{properties.get('objects', '?')} objects",
            fingerprint[:28] + ("..." if len(fingerprint) > 28 else ""),
        ]
    elif kind == names.LINEAGE_IMAGE:
        details = [f"tag {properties.get('tag', '?')}", f"digest {properties.get('digest', '?')}"]
    elif kind == names.LINEAGE_TRAINING_JOB:
        details = [properties.get("model_version", ""), f"trained {properties.get('trained_at', '?')}"]
    elif kind in (names.LINEAGE_MODEL_PACKAGE, names.LINEAGE_ENDPOINT_CONFIG):
        details = [properties.get("model_version", "")]
    shown = ", ".join(d for d in details if d)
    return f"{kind} {uri}" + (f" ({shown})" if shown else "")


def _when(created: Any) -> str:
    if isinstance(created, datetime):
        return created.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(created)


def render(
    graph: Graph, root: str, describe: Describer, *, upstream: bool, times: dict[tuple[str, str], Any] | None = None
) -> list[str]:
    """The tree below ``root``: towards inputs when ``upstream``, towards uses otherwise."""
    lines: list[str] = []
    shown: set[str] = set()

    def walk(arn: str, prefix: str, edge: dict[str, str] | None, last: bool) -> None:
        vertex = graph.vertices[arn]
        text = label(vertex, describe(vertex))
        if edge is not None and times and (edge["SourceArn"], edge["DestinationArn"]) in times:
            text += f" [since {_when(times[edge['SourceArn'], edge['DestinationArn']])}]"
        branch = "" if edge is None else ("└── " if last else "├── ")
        repeated = arn in shown
        lines.append(prefix + branch + text + (" (shown above)" if repeated else ""))
        if repeated:
            return
        shown.add(arn)
        children = graph.sources_of(arn) if upstream else graph.destinations_of(arn)
        child_prefix = prefix if edge is None else prefix + ("    " if last else "│   ")
        for index, child in enumerate(children):
            walk(child["SourceArn" if upstream else "DestinationArn"], child_prefix, child, index == len(children) - 1)

    walk(root, "", None, True)
    return lines


def _deployment_times(sm: Any, graph: Graph) -> dict[tuple[str, str], Any]:
    """When each endpoint config went on its endpoint: the association's creation time."""
    times = {}
    for edge in graph.edges:
        if graph.vertices.get(edge["DestinationArn"], {}).get("Type") == names.LINEAGE_ENDPOINT:
            found = sm.list_associations(SourceArn=edge["SourceArn"], DestinationArn=edge["DestinationArn"])
            for association in found["AssociationSummaries"]:
                times[edge["SourceArn"], edge["DestinationArn"]] = association["CreationTime"]
    return times


def lineage_report(target: str, sm: Any | None = None) -> list[str]:
    sm = sm or boto3.client("sagemaker")
    match = VERSION_TARGET.match(target)
    start = (
        _start_of_version(sm, match["project"], match["model"], match["version"])
        if match
        else _start_of_endpoint(sm, target)
    )
    root = start.get("ContextArn") or start["ArtifactArn"]
    lineage_type = "Context" if "ContextArn" in start else "Artifact"
    kind = start.get("ContextType") or start.get("ArtifactType")
    describe = Describer(sm)
    upstream = query(sm, root, "Ascendants")
    upstream.vertices[root] = {"Arn": root, "Type": kind, "LineageType": lineage_type}
    describe.cache[root] = start
    lines = render(upstream, root, describe, upstream=True, times=_deployment_times(sm, upstream))
    if match:
        downstream = query(sm, root, "Descendants")
        downstream.vertices[root] = upstream.vertices[root]
        times = _deployment_times(sm, downstream)
        lines += ["", "Deployed as:"]
        lines += render(downstream, root, describe, upstream=False, times=times)[1:] or ["  (not deployed)"]
    for data in (v for v in upstream.vertices.values() if v["Type"] == names.LINEAGE_DATASET):
        trained = query(sm, data["Arn"], "Descendants", depth=1, types=[names.LINEAGE_TRAINING_JOB])
        lines += ["", f"Trained on {label(data, describe(data))}:"]
        for vertex in sorted(trained.vertices.values(), key=lambda v: v["Arn"]):
            if vertex["Arn"] != data["Arn"]:
                lines.append(f"  {label(vertex, describe(vertex))}")
    return lines
