"""The app synthesized for the stack tests: the platform with the fixture project, or with
whatever is in projects/ (see conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from synth_helpers import new_app

from app import build_app
from stacks.environment_stage import EnvironmentStage

FIXTURE_PROJECTS = Path(__file__).resolve().parent / "fixture_projects"


@dataclass
class SynthesizedApp:
    app: cdk.App
    assembly: cdk.cx_api.CloudAssembly

    def stages(self) -> list[EnvironmentStage]:
        return [child for child in self.app.node.children if isinstance(child, EnvironmentStage)]

    def stacks(self) -> list[cdk.Stack]:
        return [stack for stage in self.stages() for stack in (stage.platform, *stage.projects)]

    def template(self, stack: cdk.Stack) -> dict[str, Any]:
        return stack.node.scope.synth().get_stack_by_name(stack.stack_name).template


def synthesize(projects_dir: Path, *, nag: bool = True) -> SynthesizedApp:
    app = build_app(new_app(projects_dir=str(projects_dir), **{"aws:cdk:bundling-stacks": []}), nag=nag)
    return SynthesizedApp(app=app, assembly=app.synth())
