"""The README's examples are what the program does: each block marked ``<!-- readme-example: NAME -->``
is either run (Python: synthesized as a project file, or in a team's own stack) or compared, exactly,
with what ``cdk synth`` prints for the mistake the README describes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import pytest
from synth_helpers import TEST_ENV, new_app

from app import build_app
from mlops_constructs import ModelPipeline
from stacks.cdk_context import cdk_json_context

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"<!-- readme-example: (?P<name>[\w-]+) -->\n```\w*\n(?P<body>.*?)```", re.S)
EXAMPLES = {m["name"]: m["body"] for m in BLOCK.finditer((ROOT / "README.md").read_text())}

# The input each printed example describes (README prose says what it is).
FRAUD_THRESHOLD = """from mlops_constructs import ModelPipeline, QualityGate
from stacks.project_stack import ProjectStack

PROJECT = "fraud"


def define(stack: ProjectStack) -> None:
    ModelPipeline(
        stack, "Scorer",
        platform=stack.platform, project=stack.project, model="scorer",
        gate={"metric": "f1", "threshold": 1.5},
    )
"""
FRAUD_NAME_ERROR = FRAUD_THRESHOLD.replace("    ModelPipeline(\n", "    ModelPipelin(\n")


def _synth_error(cwd: Path, **context: str) -> str:
    """What `npx cdk synth` prints on stderr from ``cwd`` (the CLI runs app.py with cdk.json's context)."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "app.py")],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={
            "PATH": f"{ROOT / 'node_modules' / '.bin'}:/usr/bin:/bin",
            "CDK_CONTEXT_JSON": json.dumps(cdk_json_context(**context)),
            "CDK_OUTDIR": str(cwd / "cdk.out"),
        },
    )
    assert done.returncode == 1, done.stderr
    start = min(done.stderr.find(h) for h in ("configuration error:", "project file error:") if h in done.stderr)
    return done.stderr[start:]


def test_every_marked_example_is_checked():
    assert sorted(EXAMPLES) == sorted(
        ["settings-error", "add-a-model", "project-error", "project-python-error", "another-cdk-app"]
    )


def test_the_settings_error_example_is_what_synth_prints(tmp_path):
    (tmp_path / "config").mkdir()
    text = (ROOT / "config" / "environments.yaml").read_text()
    assert text.count('account: "111111111111"') == 1
    (tmp_path / "config" / "environments.yaml").write_text(
        text.replace('account: "111111111111"', "account: 11111111111")
    )
    assert _synth_error(tmp_path, settings_file="config/environments.yaml") == EXAMPLES["settings-error"]


@pytest.mark.parametrize(
    "example,project_file", [("project-error", FRAUD_THRESHOLD), ("project-python-error", FRAUD_NAME_ERROR)]
)
def test_the_project_error_examples_are_what_synth_prints(tmp_path, example, project_file):
    (tmp_path / "projects").mkdir()
    (tmp_path / "projects" / "fraud.py").write_text(project_file)
    assert _synth_error(tmp_path, projects_dir="projects", environments="dev") == EXAMPLES[example]


def test_the_add_a_model_example_synthesizes_what_the_readme_says(tmp_path):
    (tmp_path / "endpoint_security.py").write_text(EXAMPLES["add-a-model"])
    app = build_app(new_app(projects_dir=str(tmp_path), environments="dev"), nag=False)
    [stage] = [child for child in app.node.children if hasattr(child, "platform")]
    [stack] = stage.projects
    [pipeline] = [c for c in stack.node.find_all() if isinstance(c, ModelPipeline)]
    config = pipeline.config
    assert stack.stack_name == "mlops-dev-endpoint-security"
    assert (config.project, config.model, config.gate.threshold) == ("endpoint-security", "process-classifier", 0.85)
    assert config.retraining.interval_days == 7 and config.endpoint.autoscaling.max_capacity == 4
    template = json.dumps(stage.synth().get_stack_by_name(stack.stack_name).template)
    assert '"RepositoryName": "endpoint-security/process-classifier"' in template


def test_the_another_cdk_app_example_runs_in_a_team_s_stack_and_keeps_slack():
    stack = cdk.Stack(new_app(), "TeamStack", env=TEST_ENV)
    namespace = {"self": stack}
    exec(EXAMPLES["another-cdk-app"], namespace)  # noqa: S102 - the README's own example
    [pipeline] = [c for c in stack.node.find_all() if isinstance(c, ModelPipeline)]
    assert pipeline.config.notifications.slack_webhook_secret_name == "mlops/dev/slack-webhook"


def test_the_shipped_local_settings_synthesize_with_the_command_they_suggest(tmp_path):
    """config/local.yaml's comment says how to synthesize it; that command must work."""
    comment = (ROOT / "config" / "local.yaml").read_text()
    assert "npx cdk synth --no-lookups -c settings_file=config/local.yaml" in comment
    if shutil.which("npx") is None and not (ROOT / "node_modules" / ".bin" / "cdk").exists():
        pytest.skip("no CDK CLI")
    done = subprocess.run(
        [
            str(ROOT / "node_modules" / ".bin" / "cdk"),
            "synth",
            "--no-lookups",
            "-c",
            "settings_file=config/local.yaml",
            "--quiet",
            "--output",
            str(tmp_path / "out"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": f"{ROOT / 'node_modules' / '.bin'}:/usr/bin:/bin", "HOME": str(Path.home())},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "out" / "assembly-local").is_dir()
