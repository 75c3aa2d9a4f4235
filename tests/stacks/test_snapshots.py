"""One snapshot per stack of the platform with the fixture project (asset hashes masked): a diff in
review shows exactly what a change does to the infrastructure. Update with
``pytest tests/stacks --snapshot-update`` after reviewing. The projects in projects/ are not
snapshotted (a model team adds one without touching a test); the properties every project must
satisfy run over them in the other stack tests."""

from __future__ import annotations

import pytest
from stack_apps import FIXTURE_PROJECTS, synthesize
from synth_helpers import masked


@pytest.mark.parametrize("environment", ["dev", "stage", "prod"])
def test_stack_templates_match_snapshots(synthesized, snapshot, environment):
    stage = next(s for s in synthesized.stages() if s.node.id == environment)
    for stack in (stage.platform, *stage.projects):
        assert masked(synthesized.template(stack)) == snapshot(name=stack.stack_name)


def test_synthesis_is_deterministic(synthesized):
    """Two synths of the same code give identical templates (otherwise snapshots would flap)."""
    again = synthesize(FIXTURE_PROJECTS, nag=False)
    first = {s.stack_name: masked(synthesized.template(s)) for s in synthesized.stacks()}
    second = {s.stack_name: masked(again.template(s)) for s in again.stacks()}
    assert first == second
