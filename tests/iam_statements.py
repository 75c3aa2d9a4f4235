"""The IAM statements of a synthesized template, with their ARNs written out as AWS compares them.

Not a policy evaluator (that is local AWS's job): the tests use these to ask which statements
cover an action on a concrete ARN, then assert the conditions of those statements themselves.
Matching follows IAM's rules for the Action and Resource elements: case-insensitive actions,
``*`` for any run of characters and ``?`` for one, in actions and ARNs alike
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

PSEUDO_PARAMETERS = {"AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}


def render(value: Any) -> str:
    """A CloudFormation value as text: pseudo-parameters filled in, references as ``<Id>`` and
    other functions as ``<Fn::Name>``."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Ref":
            return PSEUDO_PARAMETERS.get(argument, f"<{argument}>")
        if function == "Fn::GetAtt":
            return f"<{'.'.join(argument) if isinstance(argument, list) else argument}>"
        if function == "Fn::Join":
            return argument[0].join(render(part) for part in argument[1])
        if function.startswith("Fn::"):
            return f"<{function}>"
    raise ValueError(f"cannot render {value!r}")


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def wildcard_match(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=0 if case_sensitive else re.IGNORECASE) is not None


def policy_documents(template: dict[str, Any], *, attached_to: str | None = None) -> Iterator[dict[str, Any]]:
    """Identity policy documents (AWS::IAM::Policy and roles' inline policies), optionally only
    those attached to roles whose logical id contains ``attached_to``."""
    for logical_id, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Policy":
            roles = [render(r) for r in as_list(properties.get("Roles", []))]
            if attached_to is None or any(attached_to in role for role in roles):
                yield properties["PolicyDocument"]
        elif resource["Type"] == "AWS::IAM::Role" and (attached_to is None or attached_to in logical_id):
            for policy in properties.get("Policies", []):
                yield policy["PolicyDocument"]


def statements(template: dict[str, Any], *, attached_to: str | None = None) -> list[dict[str, Any]]:
    documents = policy_documents(template, attached_to=attached_to)
    return [statement for document in documents for statement in as_list(document["Statement"])]


def covering(statement_list: list[dict[str, Any]], action: str, resource_arn: str) -> list[dict[str, Any]]:
    """The Allow statements whose Action and Resource elements cover ``action`` on ``resource_arn``."""
    found = []
    for statement in statement_list:
        if statement.get("Effect") != "Allow":
            continue
        if not any(wildcard_match(a, action, case_sensitive=False) for a in as_list(statement.get("Action", []))):
            continue
        if any(wildcard_match(render(r), resource_arn) for r in as_list(statement.get("Resource", []))):
            found.append(statement)
    return found
