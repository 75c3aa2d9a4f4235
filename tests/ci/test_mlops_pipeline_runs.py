"""The MLOps project's pipeline (ci/mlops-pipeline.yml) run for real by gitlab-ci-local, as a
model repository's release triggers it: fetch, lint (pylint on the unmodified model template),
version, package (the one job replaced: no container builder here), publish, train and the manual
deploy all pass against local AWS (the synthesized CI roles, ECR, the trigger Lambda run by local
Lambda) and a recorded Airflow; two pipelines of one model release at once; a re-run of publish is
a no-op; a platform variable set by the upstream stops the job. See pipeline_harness.py."""

from __future__ import annotations

import concurrent.futures
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from ci_platform import create, synthesize
from pipeline_harness import (
    GITLAB_URL,
    MLOPS_PROJECT_PATH,
    REPO,
    GitLabArtifacts,
    GitProject,
    RecordedAirflow,
    drop_caches,
    image_bin,
    job_env,
    replace_job_script,
    run_pipeline,
)

from local_aws import LocalAws
from mlops_cli.dotenv import read_dotenv
from mlops_core.names import DAG_DEPLOYMENT, DAG_TRAINING, ci_release_branch

pytestmark = [pytest.mark.integration, pytest.mark.slow]
if not shutil.which("rsync"):
    pytestmark.append(pytest.mark.skip(reason="gitlab-ci-local needs rsync: scripts/test.sh installs it"))

PROJECT, MODEL = "detection", "process-event-classifier"  # as model_template/.gitlab-ci.yml names them
ENVIRONMENT = "local"
UPSTREAM_PROJECT_ID, UPSTREAM_JOB_ID = "4242", "777"
MERGE = "Merge branch 'feature/trees' into 'main'\n\nfeat: score process trees\n\nSee merge request detection/model!3"
BUILD = f'python3 {REPO / "local_mode" / "image_archive.py"} "$MODEL_SOURCE_DIR" "$IMAGE_ARCHIVE"'


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The platform's wheel: what the pipeline pins as its CLI (a release of this repository)."""
    out = tmp_path_factory.mktemp("wheel")
    build = "import sys; from setuptools import build_meta; print(build_meta.build_wheel(sys.argv[1]))"
    subprocess.run([sys.executable, "-c", build, str(out)], cwd=REPO, check=True, capture_output=True)
    (found,) = out.glob("*.whl")
    return found


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    airflow, artifacts = RecordedAirflow(), GitLabArtifacts()
    artifacts.add_job(UPSTREAM_PROJECT_ID, UPSTREAM_JOB_ID, REPO / "model_template")
    with pytest.MonkeyPatch.context() as env, LocalAws() as aws:
        for key, value in aws.env.items():
            env.setenv(key, value)
        aws.update_scenario({"mwaa": {"airflow_url": f"{airflow.url}/api/v2", "auth": "none"}})
        synth = synthesize({PROJECT: [MODEL]}, (ENVIRONMENT,), GITLAB_URL, MLOPS_PROJECT_PATH)
        report = create(synth)
        yield {"aws": aws, "synth": synth, "report": report, "airflow": airflow, "artifacts": artifacts}
    airflow.close()
    artifacts.close()


def mlops_project(tmp: Path, platform, wheel: Path) -> GitProject:
    """The MLOps GitLab project's release branch for the project: its .gitlab-ci.yml includes the
    pipeline with the branch's inputs (here the file itself, locally, not by `project:`)."""
    tmp.mkdir(parents=True, exist_ok=True)
    pipeline = tmp / "mlops-pipeline.yml"
    shutil.copy(REPO / "ci" / "mlops-pipeline.yml", pipeline)
    replace_job_script(pipeline, "package", [BUILD], drop=("image", "variables"))
    drop_caches(pipeline)
    include = f"""include:
  - local: ci/mlops-pipeline.yml
    inputs:
      environment: {ENVIRONMENT}
      aws_account_id: "{platform["synth"].account}"
      aws_region: {platform["synth"].region}
      project: {PROJECT}
      cli_requirement: "mlops-platform[cli] @ {wheel.as_uri()}"
      aws_endpoint_url: {platform["aws"].url}
"""
    return GitProject.create(
        tmp / "mlops",
        MLOPS_PROJECT_PATH,
        {".gitlab-ci.yml": include, "ci/mlops-pipeline.yml": pipeline},
        branch=ci_release_branch(ENVIRONMENT, PROJECT),
    )


def upstream_variables(platform, pipeline_id: int, **extra: str) -> dict[str, str]:
    """What GitLab gives the downstream pipeline: the trigger job's variables, the job token, the
    API URL, and each job's ID token for this branch (minted: local STS checks all but the signature)."""
    return {
        "CI_PIPELINE_SOURCE": "pipeline",
        "CI_PIPELINE_ID": str(pipeline_id),
        "CI_API_V4_URL": platform["artifacts"].api_url,
        "CI_JOB_TOKEN": "job-token",
        "CI_SERVER_HOST": "gitlab.example.com",
        # Valid for the whole pipeline here (GitLab issues one per job, valid while the job runs).
        "AWS_ID_TOKEN": platform["synth"].ci.token(ci_release_branch(ENVIRONMENT, PROJECT), lifetime_seconds=3600),
        "MODEL_PROJECT": PROJECT,
        "MODEL_NAME": MODEL,
        "UPSTREAM_PROJECT_ID": UPSTREAM_PROJECT_ID,
        "UPSTREAM_JOB_ID": UPSTREAM_JOB_ID,
        "UPSTREAM_COMMIT_SHA": "0123abcd",
        "UPSTREAM_COMMIT_MESSAGE": MERGE,
        **extra,
    }


def released_versions() -> list[str]:
    ecr = boto3.client("ecr")
    ids = ecr.list_images(repositoryName=f"{PROJECT}/{MODEL}", filter={"tagStatus": "TAGGED"})["imageIds"]
    return sorted(i["imageTag"] for i in ids)


@pytest.fixture(scope="module")
def first_release(platform, wheel, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("first")
    project = mlops_project(tmp, platform, wheel)
    env = job_env([image_bin(tmp)], tmp / "home")
    run = run_pipeline(project, variables=upstream_variables(platform, 501), env=env, manual=["deploy"])
    return project, run, env


def test_the_whole_pipeline_runs_green_and_releases_trains_and_deploys(platform, first_release):
    project, run, _ = first_release
    for job in ("fetch", "lint", "version", "package", "publish", "train", "deploy"):
        assert run.passed(job), f"{job} did not pass:\n{run.output[-6000:]}"
    assert run.returncode == 0, run.output[-3000:]
    # feat: in the merge request's title (the merge commit's body): a minor release, the first one.
    assert read_dotenv(project.path / "bump.env") == {"VERSION_BUMP": "minor"}
    assert read_dotenv(project.path / "release.env")["MODEL_VERSION"] == "0.1.0"
    assert released_versions() == ["0.1.0"]
    airflow = platform["airflow"].runs
    (training,) = [run for (dag, _), run in airflow.items() if dag == DAG_TRAINING]
    assert training["conf"] == {
        "project": PROJECT,
        "model": MODEL,
        "image_tag": "0.1.0",
        "retraining": False,
        "source_commit": "0123abcd",
    }
    (deployment,) = [run for (dag, _), run in airflow.items() if dag == DAG_DEPLOYMENT]
    assert deployment["conf"]["model_version"] == "0.1.0+r0"
    assert (f"/api/v4/projects/{UPSTREAM_PROJECT_ID}/jobs/{UPSTREAM_JOB_ID}/artifacts", "job-token") in platform[
        "artifacts"
    ].requests


def test_a_rerun_of_a_finished_publish_is_a_no_op(platform, first_release):
    project, _, env = first_release
    before = released_versions()
    # Retry the publish job of the finished pipeline: the same image archive, pushed already.
    rerun = run_pipeline(
        project, jobs=["publish"], with_needs=False, variables=upstream_variables(platform, 501), env=env
    )
    assert rerun.passed("publish"), rerun.output[-4000:]
    assert "is this image already" in rerun.output
    assert released_versions() == before


def test_two_pipelines_of_one_model_release_at_once_with_distinct_versions(platform, first_release, wheel, tmp_path):
    before = set(released_versions())
    projects = [mlops_project(tmp_path / name, platform, wheel) for name in ("a", "b")]
    envs = [job_env([image_bin(p.path.parent)], p.path.parent / "home") for p in projects]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        runs = list(
            pool.map(
                lambda i: run_pipeline(
                    projects[i], jobs=["publish"], variables=upstream_variables(platform, 601 + i), env=envs[i]
                ),
                range(2),
            )
        )
    for run in runs:
        assert run.passed("publish"), run.output[-4000:]
    versions = {read_dotenv(p.path / "release.env")["MODEL_VERSION"] for p in projects}
    assert len(versions) == 2 and versions == set(released_versions()) - before


def test_a_platform_variable_set_by_the_upstream_stops_the_job_naming_it(platform, first_release):
    project, _, env = first_release
    hostile = upstream_variables(platform, 701, MLOPS_ENVIRONMENT="prod", PIP_INDEX_URL="https://evil.example/simple")
    run = run_pipeline(project, jobs=["fetch"], variables=hostile, env=env)
    assert not run.passed("fetch")
    assert "MLOPS_ENVIRONMENT is 'prod', but this pipeline's inputs make it 'local'" in run.output
    assert "PIP_INDEX_URL is set" in run.output
