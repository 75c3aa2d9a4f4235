"""cfn-lint on every synthesized template: errors and warnings both fail."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_template_is_cfn_lint_clean(every_app, tmp_path):
    paths = []
    for stack in every_app.stacks():
        path = tmp_path / f"{stack.stack_name}.template.json"
        path.write_text(json.dumps(every_app.template(stack)))
        paths.append(str(path))
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "cfn-lint"),
            "--config-file",
            str(ROOT / ".cfnlintrc.yaml"),
            "--format",
            "parseable",
            "--",
            *paths,
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
