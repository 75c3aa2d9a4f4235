"""One snapshot per synthesized stack (asset hashes masked): a diff in review shows exactly what
a change does to the infrastructure. Update with ``pytest --snapshot-update`` after reviewing."""

from __future__ import annotations

import pytest
from synth_helpers import masked


@pytest.mark.parametrize("environment", ["dev", "stage", "prod"])
def test_stack_templates_match_snapshots(synthesized, snapshot, environment):
    stage = next(s for s in synthesized.stages() if s.node.id == environment)
    for stack in (stage.platform, *stage.projects):
        assert masked(synthesized.template(stack)) == snapshot(name=stack.stack_name)


def test_synthesis_is_deterministic(synthesized):
    """Two synths of the same code give identical templates (otherwise snapshots would flap)."""
    from synth_helpers import new_app

    from app import build_app

    again = build_app(new_app(**{"aws:cdk:bundling-stacks": []}), nag=False)
    again.synth()
    first = {s.stack_name: masked(synthesized.template(s)) for s in synthesized.stacks()}
    stages = [c for c in again.node.children if hasattr(c, "platform")]
    second = {
        s.stack_name: masked(s.node.scope.synth().get_stack_by_name(s.stack_name).template)
        for stage in stages
        for s in (stage.platform, *stage.projects)
    }
    assert first == second
