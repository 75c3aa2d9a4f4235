"""One synthesis of the whole app (all environments, the repo's projects) shared by the stack tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import pytest
from synth_helpers import new_app

from app import build_app
from stacks.environment_stage import EnvironmentStage


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


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedApp:
    app = build_app(new_app(**{"aws:cdk:bundling-stacks": []}))
    assembly = app.synth()
    return SynthesizedApp(app=app, assembly=assembly)
