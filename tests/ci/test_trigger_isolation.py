"""One project cannot act for another, and one environment's pipeline cannot act in another:
enforced by the deployed policies (local AWS evaluating the synthesized IAM policies, local Lambda
running the real trigger handler), not only by the handler.

The CI roles come from GitLab ID tokens as a job on the MLOps project's branch
models/<environment>/<project> gets them; AWS evaluates only the token's aud and sub."""

from __future__ import annotations

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from ci_platform import create, synthesize
from pipeline_harness import GITLAB_URL, MLOPS_PROJECT_PATH, RecordedAirflow

from local_aws import LocalAws
from local_mode.actors import credentials_env, web_identity_credentials
from mlops_cli import dag_runs
from mlops_cli.errors import CliError
from mlops_constructs.ci_access import model_project_role_name
from mlops_core.names import DAG_DEPLOYMENT, ci_release_branch

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PROJECTS = {"team-a": ["classifier"], "team-b": ["classifier"]}


@pytest.fixture(scope="module")
def platform():
    airflow = RecordedAirflow()
    with pytest.MonkeyPatch.context() as env, LocalAws() as aws:
        for key, value in aws.env.items():
            env.setenv(key, value)
        aws.update_scenario({"mwaa": {"airflow_url": f"{airflow.url}/api/v2", "auth": "none"}})
        synth = synthesize(PROJECTS, ("local", "prod"), GITLAB_URL, MLOPS_PROJECT_PATH)
        report = create(synth)
        yield aws, synth, report, airflow
    airflow.close()


def ci_credentials(platform, project: str, branch_environment: str = "local", role_environment: str = "local"):
    aws, synth, _, _ = platform
    role = f"arn:aws:iam::{synth.account}:role/{model_project_role_name(role_environment, project)}"
    return web_identity_credentials(aws, role, synth.ci.token(ci_release_branch(branch_environment, project)))


def deployment(project: str, job: int) -> dict:
    return {
        "action": "trigger",
        "dag_id": DAG_DEPLOYMENT,
        "pipeline_id": 7,
        "job_id": job,
        "conf": {"project": project, "model": "classifier", "model_version": "0.1.0+r0"},
    }


def call(url: str, credentials, event) -> dict:
    with pytest.MonkeyPatch.context() as env:
        for key, value in credentials_env(credentials).items():
            env.setenv(key, value)
        return dag_runs.invoke(url, event, attempts=1)


def test_a_project_starts_its_own_deployment_through_its_alias(platform):
    _, _, report, airflow = platform
    result = call(report.trigger_urls["team-a"], ci_credentials(platform, "team-a"), deployment("team-a", 1))
    assert result["status"] == 201
    run = airflow.runs[(DAG_DEPLOYMENT, result["dag_run_id"])]
    assert run["conf"]["project"] == "team-a"


def test_project_a_is_refused_project_bs_alias_by_the_deployed_policy(platform):
    _, _, report, airflow = platform
    before = dict(airflow.runs)
    with pytest.raises(CliError) as refused:
        call(report.trigger_urls["team-b"], ci_credentials(platform, "team-a"), deployment("team-b", 2))
    message = refused.value.message
    assert "trigger refused (403)" in message
    assert f"{model_project_role_name('local', 'team-a')}/" in message  # the caller, named by IAM
    assert "lambda:InvokeFunctionUrl on resource: arn:aws:lambda:" in message and ":team-b" in message
    assert airflow.runs == before  # the function never ran


def test_project_a_asking_its_own_alias_for_project_b_is_refused_by_the_handler(platform):
    _, _, report, airflow = platform
    before = dict(airflow.runs)
    with pytest.raises(CliError, match="project_not_allowed"):
        call(report.trigger_urls["team-a"], ci_credentials(platform, "team-a"), deployment("team-b", 3))
    assert airflow.runs == before


def test_a_direct_invoke_of_the_function_is_refused_to_a_ci_role(platform):
    _, synth, report, _ = platform
    lam = boto3.session.Session(**_keys(ci_credentials(platform, "team-a")), region_name=synth.region).client("lambda")
    with pytest.raises(ClientError, match="AccessDenied"):
        lam.invoke(FunctionName=report.trigger_function_name, Payload=b"{}")  # unqualified: no project


def test_a_branch_of_one_project_or_environment_cannot_assume_another_role(platform):
    with pytest.raises(ClientError, match="AccessDenied"):  # team-a's branch, team-b's role
        ci_credentials_of(platform, token_project="team-a", role_project="team-b")
    with pytest.raises(ClientError, match="AccessDenied"):  # a dev (local) pipeline cannot assume the prod role
        ci_credentials(platform, "team-a", branch_environment="local", role_environment="prod")
    assert ci_credentials(platform, "team-a", branch_environment="prod", role_environment="prod")["AccessKeyId"]


def ci_credentials_of(platform, *, token_project: str, role_project: str):
    _, synth, _, _ = platform
    role = f"arn:aws:iam::{synth.account}:role/{model_project_role_name('local', role_project)}"
    sts = boto3.client("sts", config=Config(signature_version=UNSIGNED))
    token = synth.ci.token(ci_release_branch("local", token_project))
    return sts.assume_role_with_web_identity(RoleArn=role, RoleSessionName="ci", WebIdentityToken=token)


def _keys(credentials):
    return {
        "aws_access_key_id": credentials["AccessKeyId"],
        "aws_secret_access_key": credentials["SecretAccessKey"],
        "aws_session_token": credentials["SessionToken"],
    }
