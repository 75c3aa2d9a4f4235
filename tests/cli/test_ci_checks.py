"""`mlops ci`: the checks every AWS job of the MLOps pipeline runs first.

check-branch: a project's release jobs for an environment run only on its branch for that
environment, the one ref its AWS role there trusts; a mismatch stops with a clear message before
STS answers AccessDenied.

check-variables: a model repository's trigger job can set variables that override the MLOps
pipeline's own (GitLab gives trigger variables precedence); platform variables that disagree with
the pipeline's inputs, or that the pipeline never sets, stop the job, naming them."""

from mlops_cli.main import main

BRANCH = ["ci", "check-branch", "--project", "fraud", "--environment", "dev"]


def test_the_projects_release_branch_for_its_environment_passes(capsys):
    assert main([*BRANCH, "--branch", "models/dev/fraud"]) == 0
    assert "project fraud on its release branch models/dev/fraud for dev" in capsys.readouterr().out


def test_another_projects_or_another_environments_branch_is_refused_naming_the_right_one(capsys):
    assert main([*BRANCH, "--branch", "models/dev/malware"]) == 2
    err = capsys.readouterr().err
    assert "project 'fraud' releases to 'dev' from branch 'models/dev/fraud'" in err
    assert "this pipeline runs on 'models/dev/malware'" in err
    assert (
        main(["ci", "check-branch", "--project", "fraud", "--environment", "prod", "--branch", "models/dev/fraud"]) == 2
    )


def test_main_and_a_missing_branch_are_refused(monkeypatch, capsys):
    assert main([*BRANCH, "--branch", "main"]) == 2
    monkeypatch.delenv("CI_COMMIT_BRANCH", raising=False)
    assert main(BRANCH) == 2
    assert "runs on '(no branch)'" in capsys.readouterr().err


def test_defaults_come_from_the_gitlab_job_environment(monkeypatch):
    monkeypatch.setenv("MODEL_PROJECT", "fraud")
    monkeypatch.setenv("MLOPS_ENVIRONMENT", "dev")
    monkeypatch.setenv("CI_COMMIT_BRANCH", "models/dev/fraud")
    assert main(["ci", "check-branch"]) == 0


def clean_env(monkeypatch, **values):
    import os

    for name in list(os.environ):
        if name.startswith(("AWS_", "MLOPS_", "PIP_", "UV_", "LD_", "PYTHON")):
            monkeypatch.delenv(name)
    for name, value in values.items():
        monkeypatch.setenv(name, value)


EXPECT = [
    "--expect",
    "MLOPS_ENVIRONMENT=dev",
    "--expect",
    "AWS_ACCOUNT_ID=111111111111",
    "--expect",
    "AWS_ENDPOINT_URL=",
]


def test_variables_as_the_inputs_make_them_pass(monkeypatch, capsys):
    clean_env(monkeypatch, MLOPS_ENVIRONMENT="dev", AWS_ACCOUNT_ID="111111111111", AWS_ID_TOKEN="jwt")
    assert main(["ci", "check-variables", *EXPECT]) == 0
    assert "3 checked" in capsys.readouterr().out


def test_an_upstream_override_of_the_environment_and_account_is_refused_naming_them(monkeypatch, capsys):
    clean_env(monkeypatch, MLOPS_ENVIRONMENT="prod", AWS_ACCOUNT_ID="333333333333")
    assert main(["ci", "check-variables", *EXPECT]) == 2
    err = capsys.readouterr().err
    assert "MLOPS_ENVIRONMENT is 'prod', but this pipeline's inputs make it 'dev'" in err
    assert "AWS_ACCOUNT_ID is '333333333333'" in err
    assert "A model repository may pass only MODEL_NAME, UPSTREAM_PROJECT_ID" in err


def test_variables_the_pipeline_never_sets_are_refused(monkeypatch, capsys):
    clean_env(
        monkeypatch,
        MLOPS_ENVIRONMENT="dev",
        AWS_ACCOUNT_ID="111111111111",
        PIP_INDEX_URL="https://evil.example/simple",
        AWS_ENDPOINT_URL_STS="https://sts.evil.example",
        MLOPS_TRIGGER_URL="https://evil.example",
        PYTHONPATH="/tmp/x",
    )
    assert main(["ci", "check-variables", *EXPECT]) == 2
    err = capsys.readouterr().err
    for name in ("PIP_INDEX_URL", "AWS_ENDPOINT_URL_STS", "MLOPS_TRIGGER_URL", "PYTHONPATH"):
        assert f"{name} is set" in err
