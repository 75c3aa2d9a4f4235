"""The app as the platform team runs it: environments selected by context, projects discovered
from projects/*.py, configuration errors reported without a traceback."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from synth_helpers import new_app, write_project_file

from app import build_app
from mlops_constructs.validation import ConfigurationError
from stacks.cdk_context import cdk_json_context
from stacks.projects import discover_projects

ROOT = Path(__file__).resolve().parent.parent
PROJECT_FILE = """
from mlops_constructs import ModelPipeline
PROJECT = "{project}"
{extra}
def define(stack):
    ModelPipeline(stack, "M", platform=stack.platform, project=stack.project, model="{model}",
                  gate={{"metric": "f1", "threshold": 0.8}})
"""


def _projects(tmp_path, *entries):
    tmp_path.mkdir(parents=True, exist_ok=True)
    for file_name, project, model, extra in entries:
        write_project_file(tmp_path, file_name, PROJECT_FILE.format(project=project, model=model, extra=extra))
    return tmp_path


def test_one_stage_per_selected_environment_with_platform_and_project_stacks(tmp_path):
    projects = _projects(
        tmp_path,
        ("fraud", "fraud", "scorer", ""),
        ("malware", "malware", "detector", 'ENVIRONMENTS = ("dev",)'),
    )
    app = build_app(new_app(environments="dev,prod", projects_dir=str(projects)), nag=False)
    stages = {stage.node.id: stage for stage in app.node.children if hasattr(stage, "platform")}
    assert sorted(stages) == ["dev", "prod"]
    assert [s.stack_name for s in stages["dev"].projects] == ["mlops-dev-fraud", "mlops-dev-malware"]
    assert [s.stack_name for s in stages["prod"].projects] == ["mlops-prod-fraud"], "ENVIRONMENTS limits a project"
    assert stages["prod"].platform.account == "333333333333"


def test_duplicate_project_files_are_refused_naming_both(tmp_path):
    _projects(tmp_path, ("a", "fraud", "x", ""), ("b", "fraud", "y", ""))
    with pytest.raises(
        ConfigurationError, match=r"duplicate project: PROJECT='fraud' is defined in .*a\.py and .*b\.py"
    ):
        discover_projects(tmp_path)


def test_project_file_without_the_contract_is_refused(tmp_path):
    write_project_file(tmp_path, "broken", "X = 1\n")
    with pytest.raises(ConfigurationError, match="defines PROJECT"):
        discover_projects(tmp_path)


def test_uppercase_project_names_are_refused(tmp_path):
    _projects(tmp_path, ("a", "Fraud", "x", ""))
    with pytest.raises(ConfigurationError, match="PROJECT='Fraud' is invalid"):
        discover_projects(tmp_path)


def test_unknown_environment_exits_with_a_message_not_a_traceback(tmp_path):
    result = _synth_in_subprocess(tmp_path, environments="qa")
    assert result.returncode == 1
    assert (
        "configuration error: unknown environment 'qa' in -c environments=qa; the environments in "
        "config/environments.yaml are: dev, prod, stage"
    ) in result.stderr
    assert "Traceback" not in result.stderr


def _synth_in_subprocess(tmp_path, **context: str):
    """`cdk synth` as the CLI runs the app: cdk.json's context (feature flags) plus -c values."""
    context = {"environments": "dev", **context}
    return subprocess.run(
        [sys.executable, "app.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={
            "PATH": "/usr/bin:/bin",
            "CDK_CONTEXT_JSON": json.dumps(cdk_json_context(**context)),
            "CDK_OUTDIR": str(tmp_path / "out"),
        },
    )


def test_a_misspelt_environment_in_a_project_file_is_refused_naming_it(tmp_path):
    (tmp_path / "projects").mkdir()
    projects = _projects(tmp_path / "projects", ("fraud", "fraud", "scorer", 'ENVIRONMENTS = ("dev", "prd")'))
    result = _synth_in_subprocess(tmp_path, projects_dir=str(projects))
    assert result.returncode == 1
    assert "fraud.py: ENVIRONMENTS names unknown environment(s) 'prd'; the environments in" in result.stderr
    assert "Traceback" not in result.stderr


def test_environments_must_be_a_tuple_of_names(tmp_path):
    _projects(tmp_path, ("fraud", "fraud", "scorer", 'ENVIRONMENTS = "dev"'))
    with pytest.raises(ConfigurationError, match="ENVIRONMENTS must be a tuple of environment names, got 'dev'"):
        discover_projects(tmp_path)


def test_a_model_defined_twice_stops_synth_with_a_message_not_a_traceback(tmp_path):
    projects = tmp_path / "projects"
    projects.mkdir()
    write_project_file(
        projects,
        "fraud",
        PROJECT_FILE.format(project="fraud", model="scorer", extra="")
        + '    ModelPipeline(stack, "Again", platform=stack.platform, project=stack.project, model="scorer",\n'
        + '                  gate={"metric": "f1", "threshold": 0.8})\n',
    )
    result = _synth_in_subprocess(tmp_path, projects_dir=str(projects))
    assert result.returncode == 1
    assert "configuration error: duplicate model: project='fraud' model='scorer'" in result.stderr
    assert "fraud.py, line 6" in result.stderr and "fraud.py, line 8" in result.stderr  # both calls
    assert "Traceback" not in result.stderr


def test_a_project_limited_to_deployment_environments_runs_in_the_local_environment(tmp_path):
    """config/local.yaml knows only "local"; ENVIRONMENTS names the deployment environments of
    config/environments.yaml, and the local environment holds every project (local mode tries any)."""
    projects = _projects(tmp_path, ("fraud", "fraud", "scorer", 'ENVIRONMENTS = ("dev", "stage", "prod")'))
    app = build_app(new_app(settings_file=str(ROOT / "config" / "local.yaml"), projects_dir=str(projects)), nag=False)
    [stage] = [child for child in app.node.children if hasattr(child, "platform")]
    assert [s.stack_name for s in stage.projects] == ["mlops-local-fraud"]
    with pytest.raises(
        ConfigurationError, match=r"ENVIRONMENTS names unknown environment\(s\) 'qa'; .*local, prod, stage"
    ):
        build_app(
            new_app(
                settings_file=str(ROOT / "config" / "local.yaml"),
                projects_dir=str(_projects(tmp_path / "other", ("fraud", "fraud", "scorer", 'ENVIRONMENTS = ("qa",)'))),
            ),
            nag=False,
        )


def test_a_project_file_from_elsewhere_replaces_the_project_of_the_same_name(tmp_path):
    projects = _projects(tmp_path / "repo", ("fraud", "fraud", "scorer", ""))
    mine = _projects(tmp_path / "mine", ("fraud", "fraud", "scorer-v2", "")) / "fraud.py"
    app = build_app(new_app(environments="dev", projects_dir=str(projects), project_files=str(mine)), nag=False)
    [stage] = [child for child in app.node.children if hasattr(child, "platform")]
    [stack] = stage.projects
    assert [c.node.id for c in stack.node.children if c.node.id == "M"] == ["M"]
    assert "scorer-v2" in json.dumps(stack.resolve(stack.node.find_child("M").config.model_dump(mode="json")))


BROKEN_DEFINE = """
from mlops_constructs import ModelPipeline
PROJECT = "fraud"

def define(stack):
    ModelPipelin(stack, "M", platform=stack.platform, project=stack.project, model="scorer",
                 gate={"metric": "f1", "threshold": 0.8})
"""


@pytest.mark.parametrize(
    "body,expected",
    [
        (
            BROKEN_DEFINE,
            "project file error: {file}, line 6, in define (environment 'dev')\n"
            '    ModelPipelin(stack, "M", platform=stack.platform, project=stack.project, model="scorer",\n'
            "NameError: name 'ModelPipelin' is not defined\n",
        ),
        (
            'PROJECT = "fraud"\nimport numpyy\ndef define(stack):\n    pass\n',
            "project file error: {file}, line 2\n    import numpyy\nModuleNotFoundError: No module named 'numpyy'\n",
        ),
        (
            'PROJECT = "fraud"\ndef define(stack)\n    pass\n',
            "project file error: {file}, line 2\n    def define(stack)\nSyntaxError: expected ':'\n",
        ),
        (
            # An error the CDK raises through jsii: the message, not jsii's frames.
            BROKEN_DEFINE.replace("ModelPipelin(", "ModelPipeline(").replace(
                '"threshold": 0.8})',
                '"threshold": 0.8})\n    ModelPipeline(stack, "M", platform=stack.platform, '
                'project=stack.project, model="other", gate={"metric": "f1", "threshold": 0.8})',
            ),
            "project file error: {file}, line 8, in define (environment 'dev')\n"
            '    ModelPipeline(stack, "M", platform=stack.platform, project=stack.project, model="other", '
            'gate={{"metric": "f1", "threshold": 0.8}})\n'
            "RuntimeError: There is already a Construct with name 'M' in ",
        ),
    ],
    ids=["name-error-in-define", "import-error", "syntax-error", "cdk-error"],
)
def test_a_python_error_in_a_project_file_names_the_file_and_line_without_jsii_frames(tmp_path, body, expected):
    projects = tmp_path / "projects"
    projects.mkdir()
    path = write_project_file(projects, "fraud", body)
    result = _synth_in_subprocess(tmp_path, projects_dir=str(projects))
    assert result.returncode == 1
    shown = result.stderr[result.stderr.index("project file error:") :]
    assert shown.startswith(expected.format(file=path)), shown
    assert "Traceback" not in result.stderr and "jsii" not in shown


def test_a_typed_setting_that_cannot_be_built_names_the_file_line_environment_and_field(tmp_path):
    projects = tmp_path / "projects"
    projects.mkdir()
    path = write_project_file(
        projects,
        "fraud",
        "from mlops_constructs import ModelPipeline, QualityGate\n"
        'PROJECT = "fraud"\n'
        "def define(stack):\n"
        '    ModelPipeline(stack, "M", platform=stack.platform, project=stack.project, model="scorer",\n'
        '                  gate=QualityGate(metric="f1", threshold=1.5))\n',
    )
    result = _synth_in_subprocess(tmp_path, projects_dir=str(projects))
    assert result.returncode == 1
    assert result.stderr.endswith(
        f"configuration error: {path}, line 5 (environment 'dev'):\n"
        "  gate.threshold: f1 lies between 0 and 1 and a candidate must reach the threshold, so 1.5 can never "
        "pass: use a threshold between 0 and 1, e.g. 0.85 (got 1.5)\n"
    ), result.stderr
