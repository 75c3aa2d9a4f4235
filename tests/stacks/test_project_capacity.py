"""A project stack at its model cap stays clear of CloudFormation's 500-resource limit, and one
model more is refused at synth with a message saying what to do."""

from __future__ import annotations

import json

import pytest
from synth_helpers import TEST_ENV, new_app

import stacks.project_stack as project_stack
from mlops_constructs import ModelPipeline
from stacks.project_stack import MAX_MODELS_PER_STACK, ProjectStack
from stacks.settings import EnvironmentSettings

SETTINGS = EnvironmentSettings(name="dev", account="111111111111", region="eu-west-1")


def _define(count: int):
    def define(stack: ProjectStack) -> None:
        for i in range(count):
            ModelPipeline(
                stack,
                f"M{i}",
                platform=stack.platform,
                project=stack.project,
                model=f"model-{i}",
                gate={"metric": "f1", "threshold": 0.8},
            )

    return define


@pytest.mark.slow
def test_a_full_project_stack_stays_well_under_500_resources():
    app = new_app()
    stack = ProjectStack(
        app, "Full", settings=SETTINGS, project="big", define=_define(MAX_MODELS_PER_STACK), env=TEST_ENV
    )
    template = app.synth().get_stack_by_name(stack.stack_name).template
    assert len(template["Resources"]) <= 450, (
        f"{len(template['Resources'])} resources for {MAX_MODELS_PER_STACK} models"
    )
    # CloudFormation also caps a template uploaded through S3 at 1 MB.
    assert len(json.dumps(template)) < 800_000


def test_one_model_over_the_cap_is_refused(monkeypatch):
    monkeypatch.setattr(project_stack, "MAX_MODELS_PER_STACK", 2)
    with pytest.raises(ValueError, match="project='big' defines 3 models; one stack holds at most 2") as failure:
        ProjectStack(new_app(), "Over", settings=SETTINGS, project="big", define=_define(3), env=TEST_ENV)
    assert str(failure.value).startswith("tests/stacks/test_project_capacity.py (environment 'dev'): ")


def test_every_stack_of_every_project_stays_within_cloudformation_s_limits(every_app):
    """CloudFormation quotas: 500 resources, 200 parameters and 200 outputs per stack, and a 1 MB
    template (uploaded through S3), whatever the projects in projects/ define."""
    for stack in every_app.stacks():
        template = every_app.template(stack)
        assert len(template["Resources"]) <= 500, stack.stack_name
        assert len(template.get("Parameters", {})) <= 200, stack.stack_name
        assert len(template.get("Outputs", {})) <= 200, stack.stack_name
        assert len(json.dumps(template)) <= 1_000_000, stack.stack_name
