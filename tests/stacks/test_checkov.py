"""checkov over every synthesized template, from its own virtualenv, with the checked-in config.

Skips are per resource (``Metadata: checkov: skip:`` with a reason, written by
``mlops_constructs._checkov.skip_checks``), never global, so a resource added later is checked."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHECKOV = ROOT / ".venvs" / "checkov" / "bin" / "checkov"
CONFIG = ROOT / ".checkov.yaml"


def _write_templates(synthesized, directory: Path) -> dict[str, dict]:
    templates = {stack.stack_name: synthesized.template(stack) for stack in synthesized.stacks()}
    for name, template in templates.items():
        (directory / f"{name}.template.json").write_text(json.dumps(template))
    return templates


def _checkov(directory: Path) -> list[dict]:
    assert CHECKOV.exists(), "checkov's venv is missing: scripts/tool_venv.sh checkov requirements/checkov.txt"
    result = subprocess.run(
        [str(CHECKOV), "--config-file", str(CONFIG), "-d", str(directory), "-o", "json"],
        capture_output=True,
        text=True,
        cwd=directory,
    )
    reports = json.loads(result.stdout)
    return reports if isinstance(reports, list) else [reports]


def _failed(reports: list[dict]) -> list[str]:
    return [f"{c['check_id']} {c['resource']}" for r in reports for c in r["results"]["failed_checks"]]


def test_checkov_passes_with_only_per_resource_skips(every_app, tmp_path):
    templates = _write_templates(every_app, tmp_path)
    reports = _checkov(tmp_path)
    assert _failed(reports) == []
    assert sum(r["summary"]["passed"] for r in reports) > 100, "checkov must actually have checked the templates"
    skips = [
        (logical_id, skip)
        for template in templates.values()
        for logical_id, resource in template["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    for logical_id, skip in skips:
        assert len(skip.get("comment", "")) >= 20, f"{skip['id']} on {logical_id} is skipped without a reason"
    # Each skip names a check that runs on its resource (checkov counts it as skipped there).
    assert sum(r["summary"]["skipped"] for r in reports) == len(skips)


def test_nothing_is_skipped_globally():
    config = yaml.safe_load(CONFIG.read_text())
    assert not {"skip-check", "skip_check", "skip-path", "skip-framework"} & set(config)


def test_a_new_resource_without_its_own_skip_fails(synthesized, tmp_path):
    """The trigger Lambda skips CKV_AWS_116 (no dead-letter queue) on itself; the same function
    added under another name, without that metadata, is reported."""
    templates = _write_templates(synthesized, tmp_path)
    name = next(n for n in templates if n.endswith("-platform"))
    template = templates[name]
    trigger_id = next(lid for lid in template["Resources"] if lid.startswith("DagTriggerFunction"))
    added = copy.deepcopy(template["Resources"][trigger_id])
    added.pop("Metadata", None)
    added["Properties"].pop("FunctionName", None)
    template["Resources"]["AddedLaterFunction"] = added
    (tmp_path / f"{name}.template.json").write_text(json.dumps(template))
    failed = _failed(_checkov(tmp_path))
    assert "CKV_AWS_116 AWS::Lambda::Function.AddedLaterFunction" in failed
    assert not any(f.endswith(f".{trigger_id}") for f in failed)


def test_a_skip_without_a_reason_is_refused():
    from aws_cdk import aws_sqs as sqs
    from synth_helpers import new_stack

    from mlops_constructs._checkov import skip_checks

    queue = sqs.Queue(new_stack(), "Queue")
    with pytest.raises(ValueError, match="needs a real reason"):
        skip_checks(queue, {"CKV_AWS_27": "because"})
