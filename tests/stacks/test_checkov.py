"""checkov over every synthesized template, from its own virtualenv, with the checked-in config."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECKOV = ROOT / ".venvs" / "checkov" / "bin" / "checkov"


def test_checkov_passes_with_only_the_documented_skips(every_app, tmp_path):
    assert CHECKOV.exists(), "checkov's venv is missing: scripts/tool_venv.sh checkov requirements/checkov.txt"
    for stack in every_app.stacks():
        (tmp_path / f"{stack.stack_name}.template.json").write_text(json.dumps(every_app.template(stack)))
    result = subprocess.run(
        [str(CHECKOV), "--config-file", str(ROOT / ".checkov.yaml"), "-d", str(tmp_path), "-o", "json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [f"{c['check_id']} {c['resource']}" for r in reports for c in r["results"]["failed_checks"]]
    assert failed == []
    assert sum(r["summary"]["passed"] for r in reports) > 100, "checkov must actually have checked the templates"
