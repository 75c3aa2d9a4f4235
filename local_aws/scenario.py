"""The scenario: per-test steering of the local SageMaker (delays, injected failures, outputs).

Standard library only: the launcher (imported from the Airflow virtualenvs) validates scenarios
before sending them, so a typo in a test fails at once with a message naming the key.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DEFAULT_EVALUATION: dict[str, Any] = {
    "problem_type": "classification",
    "metrics": {"f1": 0.9, "precision": 0.9, "recall": 0.9, "accuracy": 0.9},
    "confusion_matrix": {"labels": ["0", "1"], "matrix": [[45, 5], [5, 45]]},
}

DEFAULT_SCENARIO: dict[str, Any] = {
    "training": {"delay_seconds": 0.5, "require_input_data": True, "rules": []},
    "processing": {
        "delay_seconds": 0.5,
        "require_input_data": True,
        "files": {"evaluation.json": DEFAULT_EVALUATION},
        "rules": [],
    },
    "endpoints": {
        "create_delay_seconds": 0.5,
        "update_delay_seconds": 0.5,
        "fail_next_creates": 0,
        "fail_next_updates": 0,
        "rules": [],
        "invoke": {"url": None, "response": {"predictions": [0]}},
    },
    # Endpoints' captured invocations are written in batches of this many records, or this old.
    "data_capture": {"flush_every_records": 100, "flush_every_seconds": 10.0},
    # Asynchronous invocations (SNS -> Lambda): a function error is retried twice, after 60 s and
    # then 120 s, as Lambda does by default; local mode shortens the waits.
    "lambda": {"async_retry_delays_seconds": [60.0, 120.0]},
    "mwaa": {"airflow_url": None, "auth": "none", "username": None, "password": None},
    # Free-form settings for custom job/endpoint runners (issue 6), passed through untouched.
    "runner": {},
}

WHEN_KEYS = {"name_contains", "hyperparameters", "image_contains", "environment", "endpoint_config_contains"}
# Sections whose values are free-form documents rather than settings with known keys.
_FREE_FORM = {("processing", "files"), ("endpoints", "invoke", "response"), ("runner",)}


class ScenarioError(ValueError):
    """A scenario key or value is not understood; the message names it."""


def _replaced_whole(path: tuple[str, ...]) -> bool:
    """Documents (a file's content, a canned response) are replaced, never merged key by key."""
    return path == ("endpoints", "invoke", "response") or (len(path) == 3 and path[:2] == ("processing", "files"))


def deep_merge(base: dict[str, Any], patch: Mapping[str, Any], path: tuple[str, ...] = ()) -> dict[str, Any]:
    """Merge ``patch`` into a copy of ``base``; settings merge recursively, anything else replaces."""
    merged = copy.deepcopy(base)
    for key, value in patch.items():
        here = (*path, key)
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict) and not _replaced_whole(here):
            merged[key] = deep_merge(merged[key], value, here)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def validate(scenario: Mapping[str, Any]) -> None:
    """Reject unknown keys and malformed rules (a silently ignored typo would make a test lie)."""
    _check_keys(scenario, DEFAULT_SCENARIO, ())
    for section in ("training", "processing", "endpoints"):
        for index, rule in enumerate(scenario.get(section, {}).get("rules", [])):
            where = f"{section}.rules[{index}]"
            if not isinstance(rule, Mapping) or "when" not in rule:
                raise ScenarioError(f"{where} must be an object with a 'when' key")
            unknown = set(rule["when"]) - WHEN_KEYS
            if unknown:
                raise ScenarioError(f"{where}.when has unknown keys {sorted(unknown)}; known: {sorted(WHEN_KEYS)}")
            allowed = {"when", "fail", "files"} if section == "processing" else {"when", "fail"}
            if section == "endpoints":
                allowed.add("invoke")
                _check_invoke_rule(rule.get("invoke", {}), where)
            extra = set(rule) - allowed
            if extra:
                raise ScenarioError(f"{where} has unknown keys {sorted(extra)}; known: {sorted(allowed)}")


def _check_invoke_rule(invoke: Any, where: str) -> None:
    known = {"status", "delay_ms", "in_front_of_container"}
    if not isinstance(invoke, Mapping) or set(invoke) - known:
        raise ScenarioError(f"{where}.invoke must be an object with keys among {sorted(known)}")


def _check_keys(value: Any, reference: Any, path: tuple[str, ...]) -> None:
    if path in _FREE_FORM or not isinstance(reference, dict):
        return
    if not isinstance(value, Mapping):
        raise ScenarioError(f"scenario.{'.'.join(path)} must be an object")
    for key, sub in value.items():
        if key not in reference:
            where = ".".join((*path, key))
            raise ScenarioError(f"unknown scenario key {where!r}; known here: {sorted(reference)}")
        _check_keys(sub, reference[key], (*path, key))


def load(source: Mapping[str, Any] | str | Path | None) -> dict[str, Any]:
    """A scenario patch from a dict, a JSON file path, or None (empty patch)."""
    if source is None:
        return {}
    if isinstance(source, Mapping):
        patch = dict(source)
    else:
        patch = json.loads(Path(source).read_text())
    validate(patch)
    return patch


def rule_matches(
    when: Mapping[str, Any],
    *,
    name: str,
    hyperparameters: Mapping[str, str] | None = None,
    image: str | None = None,
    environment: Mapping[str, str] | None = None,
    endpoint_config: str | None = None,
) -> bool:
    """True when every condition of ``when`` holds (an empty ``when`` matches everything)."""
    if "name_contains" in when and when["name_contains"] not in name:
        return False
    if "image_contains" in when and (image is None or when["image_contains"] not in image):
        return False
    if "endpoint_config_contains" in when and (
        endpoint_config is None or when["endpoint_config_contains"] not in endpoint_config
    ):
        return False
    for key, mapping in (("hyperparameters", hyperparameters), ("environment", environment)):
        wanted = when.get(key)
        if wanted is not None:
            actual = mapping or {}
            if any(str(actual.get(k)) != str(v) for k, v in wanted.items()):
                return False
    return True


class Scenario:
    """The live scenario of one server, safe to read and change from request and worker threads."""

    def __init__(self, patch: Mapping[str, Any] | None = None) -> None:
        self._lock = threading.Lock()
        self._data = deep_merge(DEFAULT_SCENARIO, patch or {})

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._data)

    def replace(self, patch: Mapping[str, Any]) -> dict[str, Any]:
        validate(patch)
        with self._lock:
            self._data = deep_merge(DEFAULT_SCENARIO, patch)
            return copy.deepcopy(self._data)

    def update(self, patch: Mapping[str, Any]) -> dict[str, Any]:
        validate(patch)
        with self._lock:
            self._data = deep_merge(self._data, patch)
            return copy.deepcopy(self._data)

    def take_counter(self, section: str, key: str) -> bool:
        """Atomically consume one unit of a 'fail_next_*' counter; True if one was available."""
        with self._lock:
            remaining = int(self._data[section].get(key, 0))
            if remaining <= 0:
                return False
            self._data[section][key] = remaining - 1
            return True
