"""`mlops ci check-branch`: a project's release jobs run only on its own branch of the MLOps
project, the one ref its AWS role trusts; a mismatch stops the pipeline with a clear message
before any AWS call would fail with AccessDenied."""

from mlops_cli.main import main


def test_the_projects_release_branch_passes(capsys):
    assert main(["ci", "check-branch", "--project", "fraud", "--branch", "models/fraud"]) == 0
    assert "project fraud on its release branch models/fraud" in capsys.readouterr().out


def test_another_projects_branch_is_refused_naming_the_right_one(capsys):
    assert main(["ci", "check-branch", "--project", "fraud", "--branch", "models/malware"]) == 2
    err = capsys.readouterr().err
    assert "project 'fraud' releases from branch 'models/fraud'" in err
    assert "this pipeline runs on 'models/malware'" in err


def test_main_and_a_missing_branch_are_refused(monkeypatch, capsys):
    assert main(["ci", "check-branch", "--project", "fraud", "--branch", "main"]) == 2
    monkeypatch.delenv("CI_COMMIT_BRANCH", raising=False)
    assert main(["ci", "check-branch", "--project", "fraud"]) == 2
    assert "runs on '(no branch)'" in capsys.readouterr().err


def test_defaults_come_from_the_gitlab_job_environment(monkeypatch):
    monkeypatch.setenv("MODEL_PROJECT", "fraud")
    monkeypatch.setenv("CI_COMMIT_BRANCH", "models/fraud")
    assert main(["ci", "check-branch"]) == 0
