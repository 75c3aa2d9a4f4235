"""The GitLab CI files: valid against GitLab's schema (offline), and wired as the README says."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from gitlab_ci_model import BRIDGE_KEYWORDS, CiFile

from mlops_cli import main as cli_main
from mlops_cli.main import build_parser
from mlops_constructs.ci_access import AUDIENCE, deploy_role_name, diff_role_name, model_project_role_name
from mlops_core.names import CI_RELEASE_BRANCH_PREFIX

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / ".gitlab-ci.yml"
MLOPS = ROOT / "ci" / "mlops-pipeline.yml"
MODEL = ROOT / "model_template" / ".gitlab-ci.yml"
CI_FILES = [INFRA, *sorted((ROOT / "ci").glob("*.yml")), MODEL]
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"


# ---- schema ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", CI_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_valid_against_gitlabs_ci_schema_offline(path, tmp_path):
    # A dead proxy: the builtin schema ships in the wheel, nothing may need the network.
    env = {**os.environ, "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}
    header, separator, body = path.read_text().partition("\n---\n")
    checked = path
    if separator:  # a file with CI/CD inputs: both documents checked, one file each
        (tmp_path / "spec.yml").write_text(header)
        (tmp_path / "config.yml").write_text(body)
        checked = tmp_path / "config.yml"
        assert set(yaml.safe_load(header)) == {"spec"} and yaml.safe_load(header)["spec"]["inputs"]
    result = subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.gitlab-ci", str(checked)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_broken_file(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("build:\n  stage: build\n  script: 42\n  when: sometimes\n")
    result = subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.gitlab-ci", str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1


# ---- CLI calls in job scripts ----------------------------------------------------------------


def mlops_calls(ci: CiFile) -> list[tuple[str, list[str]]]:
    calls = []
    for name, job in ci.jobs.items():
        for line in [*job.get("before_script", []), *job.get("script", [])]:
            line = re.sub(r'^"\$MLOPS_VENV/bin/python" -I -m mlops_cli ', "mlops ", line)
            if line.startswith("mlops "):
                # Variables and inputs become placeholders; argparse checks commands and options.
                text = re.sub(r"\$\[\[[^\]]*\]\]|\$\{[^}]*\}[^\"\s]*|\$[A-Z_]+", "X", line)
                text = text.replace('--bump "X"', "--bump patch")  # a choice, filled in at run time
                calls.append((name, shlex.split(text)[1:]))
    return calls


@pytest.mark.parametrize("path", [MLOPS], ids=["ci/mlops-pipeline.yml"])
def test_every_mlops_call_in_a_job_is_a_valid_cli_command(path):
    calls = mlops_calls(CiFile(path))
    assert {args[0] for _, args in calls} >= {"artifacts", "version", "image", "trigger", "ci"}
    for job, args in calls:
        try:
            build_parser().parse_args(args)
        except SystemExit:
            pytest.fail(f"job {job}: `mlops {' '.join(args)}` is not a valid command")


# ---- the model repository's pipeline ---------------------------------------------------------


def check_model_wiring(ci: CiFile) -> list[str]:
    """Problems with the lint -> test -> release chain of each model (empty when wired right)."""
    problems = []
    releases = {n: j for n, j in ci.jobs.items() if "trigger" in j}
    if not releases:
        return ["no release (trigger) job"]
    for name, job in releases.items():
        model = job["variables"]["MODEL_NAME"]
        extra = set(job) - BRIDGE_KEYWORDS
        if extra:
            problems.append(f"{name}: keywords not allowed on a trigger job: {sorted(extra)}")
        trigger = job["trigger"]
        if trigger.get("strategy") != "depend" or not trigger.get("project"):
            problems.append(f"{name}: must trigger the MLOps project with strategy: depend")
        release_branch = CI_RELEASE_BRANCH_PREFIX + "$RELEASE_ENVIRONMENT/$MODEL_PROJECT"
        if trigger.get("branch") != release_branch:
            problems.append(f"{name}: must trigger the project's release branch {release_branch}")
        if job.get("rules") != [{"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"}]:
            problems.append(f"{name}: must run on the default branch only")
        needs = job.get("needs", [])
        if len(needs) != 1 or not isinstance(needs[0], dict) or needs[0].get("artifacts") is not True:
            problems.append(f"{name}: must need exactly its test job with artifacts (dotenv)")
            continue
        test = ci.jobs.get(needs[0]["job"], {})
        if test.get("variables", {}).get("MODEL_NAME") != model or test.get("stage") != "test":
            problems.append(f"{name}: needs {needs[0]['job']}, not the test job of {model}")
            continue
        if not any("MODEL_SOURCE_JOB_ID=$CI_JOB_ID" in line for line in test["script"]):
            problems.append(f"{needs[0]['job']}: does not export its job id")
        if "model-source/" not in test.get("artifacts", {}).get("paths", []):
            problems.append(f"{needs[0]['job']}: does not keep the tested source as artifacts")
        variables = job["variables"]
        for key, value in {
            "UPSTREAM_PROJECT_ID": "$CI_PROJECT_ID",
            "UPSTREAM_JOB_ID": "$MODEL_SOURCE_JOB_ID",
            "UPSTREAM_COMMIT_SHA": "$CI_COMMIT_SHA",
            "UPSTREAM_COMMIT_MESSAGE": "$CI_COMMIT_MESSAGE",
        }.items():
            if variables.get(key) != value:
                problems.append(f"{name}: {key} must be {value}")
        lint = [n for n in ci.needs(needs[0]["job"]) if ci.jobs[n].get("stage") == "lint"]
        if [ci.jobs[n]["variables"]["MODEL_NAME"] for n in lint] != [model]:
            problems.append(f"{needs[0]['job']}: must need the lint job of {model}")
    return problems


def test_model_repo_pipeline_lints_tests_and_hands_over_each_model():
    ci = CiFile(MODEL)
    assert ci.stages == ["lint", "test", "release"]
    assert check_model_wiring(ci) == []


SECOND_MODEL = """
lint:anomaly:
  extends: .lint
  variables: {MODEL_NAME: anomaly, MODEL_DIR: models/anomaly}
test:anomaly:
  extends: .test
  variables: {MODEL_NAME: anomaly, MODEL_DIR: models/anomaly}
  needs: ["lint:anomaly"]
release:anomaly:
  extends: .release
  variables: {MODEL_NAME: anomaly, MODEL_DIR: models/anomaly}
  needs: [{job: "%s", artifacts: true}]
"""


def test_a_second_model_via_extends_is_wired_and_a_miswired_one_is_caught():
    text = MODEL.read_text()
    assert check_model_wiring(CiFile(MODEL, text + SECOND_MODEL % "test:anomaly")) == []
    problems = check_model_wiring(CiFile(MODEL, text + SECOND_MODEL % "test:process-event-classifier"))
    assert problems == ["release:anomaly: needs test:process-event-classifier, not the test job of anomaly"]


def test_forwarded_variables_are_what_the_cli_reads(monkeypatch):
    read: set[str] = set()
    real_env = cli_main._env
    monkeypatch.setattr(cli_main, "_env", lambda name, default=None: read.add(name) or real_env(name, default))
    build_parser()
    from_upstream = {name for name in read if name.startswith(("UPSTREAM_", "MODEL_PROJECT", "MODEL_NAME"))}
    assert {"UPSTREAM_PROJECT_ID", "UPSTREAM_JOB_ID", "MODEL_PROJECT", "MODEL_NAME"} <= from_upstream
    release = next(j for j in CiFile(MODEL).jobs.values() if "trigger" in j)
    assert from_upstream <= set(release["variables"])
    assert release.get("inherit") == {"variables": False}  # the model repo's own variables stay home


# ---- the MLOps project's pipeline (ci/) ------------------------------------------------------
# (It also runs for real: test_mlops_pipeline_runs.py.)


def test_mlops_pipeline_stages_and_needs_chain():
    ci = CiFile(MLOPS)
    assert ci.stages == ["validate", "package", "publish", "train", "deploy"]
    expected = {
        "fetch": ("validate", []),
        "lint": ("validate", ["fetch"]),
        "version": ("validate", []),
        "package": ("package", ["fetch", "lint"]),
        "publish": ("publish", ["package", "version"]),
        "train": ("train", ["publish"]),
        "deploy": ("deploy", ["publish", "train"]),
    }
    assert {name: (job["stage"], ci.needs(name)) for name, job in ci.jobs.items()} == expected


def test_mlops_pipeline_runs_only_for_a_models_upstream_trigger_and_has_no_retrain_schedule():
    """Retraining is the Retraining DAG's alone (one decision, one run a day per model)."""
    ci = CiFile(MLOPS)
    assert ci.raw["workflow"]["rules"] == [
        {"if": '$CI_PIPELINE_SOURCE == "pipeline" && $MODEL_NAME'},
        {"when": "never"},
    ]
    assert "retrain" not in ci.jobs and "MLOPS_RETRAIN" not in MLOPS.read_text()


def test_platform_settings_come_from_inputs_and_every_aws_job_checks_them_first():
    ci = CiFile(MLOPS)
    assert set(ci.spec["inputs"]) >= {"environment", "aws_account_id", "aws_region", "project", "cli_requirement"}
    defined = {k: v for k, v in ci.raw["variables"].items() if k.startswith(("AWS_", "MLOPS_", "MODEL_PROJECT"))}
    aws_jobs = sorted(name for name, job in ci.jobs.items() if "id_tokens" in job)
    assert aws_jobs == ["deploy", "fetch", "publish", "train", "version"]
    for name in aws_jobs:
        before = ci.jobs[name]["before_script"]
        guard = next(i for i, line in enumerate(before) if "ci check-variables" in line)
        expected = dict(re.findall(r'--expect "([A-Z_]+)=([^"]*)"', before[guard]))
        assert expected == {k: str(v) for k, v in defined.items()}, name  # every platform variable, as defined
        assert not any("mlops " in line for line in before[:guard]), name  # nothing of the CLI runs before it
        assert "mlops ci check-branch" in before, name


def test_the_cli_is_pinned_and_installed_without_the_jobs_variables():
    ci = CiFile(MLOPS)
    default = ci.spec["inputs"]["cli_requirement"]["default"]
    assert re.search(r"\.git@v\d+\.\d+\.\d+$", default), "a release tag, never a branch"
    install = " ".join(ci.jobs["fetch"]["before_script"])
    assert "pip install --isolated" in install and 'env -i PATH="$PATH" HOME="$HOME"' in install
    assert "--no-config" in install and "$[[ inputs.cli_requirement ]]" in install


def test_the_image_is_built_by_a_maintained_daemonless_builder_without_credentials():
    job = CiFile(MLOPS).jobs["package"]
    assert "buildkit" in CiFile(MLOPS).spec["inputs"]["buildkit_image"]["default"]
    assert "kaniko-project" not in MLOPS.read_text()
    assert "id_tokens" not in job and any("type=oci" in line for line in job["script"])


def test_deploy_is_manual_optional_and_in_the_environment():
    jobs = CiFile(MLOPS).jobs
    (rule,) = jobs["deploy"]["rules"]
    assert rule["when"] == "manual" and rule["allow_failure"] is True  # strategy: depend can finish
    assert jobs["deploy"]["environment"]["name"] == "$[[ inputs.environment ]]"


def test_release_dotenv_feeds_train_and_deploy():
    jobs = CiFile(MLOPS).jobs
    assert jobs["version"]["artifacts"]["reports"]["dotenv"] == "bump.env"
    assert jobs["publish"]["artifacts"]["reports"]["dotenv"] == "release.env"
    assert any('--bump "$VERSION_BUMP"' in line for line in jobs["publish"]["script"])
    for name in ("train", "deploy"):
        used = set(re.findall(r"\$\{?([A-Z_]+)", " ".join(jobs[name]["script"])))
        assert "MODEL_VERSION" in used, name


def test_aws_jobs_use_id_tokens_and_the_project_role_of_ci_access():
    ci = CiFile(MLOPS)
    role_arn = ci.raw["variables"]["AWS_ROLE_ARN"]
    rendered = role_arn.replace("$[[ inputs.environment ]]", "dev").replace("$[[ inputs.project ]]", "fraud")
    assert rendered == "arn:aws:iam::$[[ inputs.aws_account_id ]]:role/" + model_project_role_name("dev", "fraud")
    for name in ("fetch", "version", "publish", "train", "deploy"):
        assert ci.jobs[name]["id_tokens"] == {"AWS_ID_TOKEN": {"aud": AUDIENCE}}, name
    text = MLOPS.read_text()
    assert "AWS_SECRET_ACCESS_KEY" not in text and "AWS_ACCESS_KEY_ID" not in text


# ---- this repository's infrastructure pipeline -----------------------------------------------


def test_infra_pipeline_gates_and_deploy_order():
    ci = CiFile(INFRA)
    assert ci.stages == ["install", "test", "synth", "gates", "diff", "deploy"]
    jobs = ci.jobs
    assert "make test" in jobs["test"]["script"]
    assert "make synth" in jobs["synth"]["script"]
    assert ci.needs("cfn-lint") == ["synth"]
    assert ci.needs("deploy:dev") == ["test", "synth", "cfn-lint"]
    assert ci.needs("deploy:stage") == ["synth", "deploy:dev"]
    assert ci.needs("deploy:prod") == ["synth", "deploy:stage"]


@pytest.mark.parametrize("environment", ["dev", "stage", "prod"])
def test_diff_per_environment_on_merge_requests_with_the_read_only_role(environment):
    job = CiFile(INFRA).jobs[f"diff:{environment}"]
    assert job["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    assert job["variables"]["MLOPS_ENVIRONMENT"] == environment
    role_arn = job["variables"]["AWS_ROLE_ARN"].replace("${MLOPS_ENVIRONMENT}", environment)
    assert role_arn.endswith(":role/" + diff_role_name(environment)), "the role GitLabCiAccess creates"
    assert any(f'"{"${MLOPS_ENVIRONMENT}"}/*"' in line and "cdk diff" in line for line in job["script"])


@pytest.mark.parametrize(("environment", "when"), [("dev", None), ("stage", "manual"), ("prod", "manual")])
def test_deploy_dev_automatic_stage_and_prod_manual_from_the_default_branch(environment, when):
    job = CiFile(INFRA).jobs[f"deploy:{environment}"]
    (rule,) = job["rules"]
    assert rule["if"] == "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"
    assert rule.get("when") == when
    assert job["environment"]["name"] == "$MLOPS_ENVIRONMENT"
    assert job["variables"]["MLOPS_ENVIRONMENT"] == environment
    role_arn = job["variables"]["AWS_ROLE_ARN"].replace("${MLOPS_ENVIRONMENT}", environment)
    assert role_arn.endswith(":role/" + deploy_role_name(environment)), "the role GitLabCiAccess creates"
    assert job["id_tokens"] == {"AWS_ID_TOKEN": {"aud": AUDIENCE}}
    assert job["resource_group"] == "deploy-$MLOPS_ENVIRONMENT"
