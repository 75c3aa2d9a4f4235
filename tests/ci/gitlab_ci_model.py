"""Reads GitLab CI files the way GitLab does for what the tests check: `extends:` deep-merged
(hashes merged, everything else replaced, in order), `default:` applied, hidden jobs dropped."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

GLOBAL_KEYWORDS = {
    "stages",
    "variables",
    "workflow",
    "default",
    "include",
    "image",
    "services",
    "cache",
    "before_script",
    "after_script",
}
DEFAULT_KEYS = {
    "image",
    "before_script",
    "after_script",
    "cache",
    "services",
    "tags",
    "timeout",
    "retry",
    "interruptible",
    "artifacts",
    "hooks",
    "id_tokens",
}
# Keywords a trigger (bridge) job may use; anything else is a configuration error in GitLab.
BRIDGE_KEYWORDS = {
    "stage",
    "trigger",
    "variables",
    "needs",
    "rules",
    "extends",
    "allow_failure",
    "when",
    "inherit",
    "resource_group",
    "environment",
    "only",
    "except",
    "dependencies",
}


def _merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base.get(key), value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(override)


class CiFile:
    def __init__(self, path: Path | str, text: str | None = None) -> None:
        self.path = Path(path)
        documents = list(yaml.safe_load_all(text if text is not None else self.path.read_text()))
        # A file with a `spec:` header (CI/CD inputs) is two documents: the header, then the config.
        self.spec: dict[str, Any] = documents[0]["spec"] if len(documents) == 2 else {}
        self.raw: dict[str, Any] = documents[-1]
        self._resolved: dict[str, dict[str, Any]] = {}

    def _resolve(self, name: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
        if name in seen:
            raise ValueError(f"extends cycle through {name}")
        job = self.raw[name]
        parents = job.get("extends", [])
        parents = [parents] if isinstance(parents, str) else parents
        merged: dict[str, Any] = {}
        for parent in parents:
            merged = _merge(merged, self._resolve(parent, (*seen, name)))
        return _merge(merged, {k: v for k, v in job.items() if k != "extends"})

    @property
    def jobs(self) -> dict[str, dict[str, Any]]:
        if not self._resolved:
            default = self.raw.get("default", {})
            for name in self.raw:
                if name in GLOBAL_KEYWORDS or name.startswith("."):
                    continue
                job = self._resolve(name)
                if "trigger" not in job:
                    job = _merge({k: v for k, v in default.items() if k in DEFAULT_KEYS}, job)
                self._resolved[name] = job
        return self._resolved

    @property
    def stages(self) -> list[str]:
        return self.raw.get("stages", [])

    def needs(self, job: str) -> list[str]:
        return [n if isinstance(n, str) else n["job"] for n in self.jobs[job].get("needs", [])]

    def script(self, job: str) -> list[str]:
        return [line for line in self.jobs[job].get("script", [])]
