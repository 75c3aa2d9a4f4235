"""The part of the platform CI meets, synthesized from the real constructs and created in local AWS
by local mode's provisioner (local_mode.cdk_env): the trigger Lambda with one alias and AWS_IAM URL
per project, GitLabCiAccess per environment (the OIDC provider, one CI role per project and
environment), and the projects' ECR repositories."""

from __future__ import annotations

import os
import tempfile

from local_mode.actors import CiIdentity
from local_mode.cdk_env import ProvisionReport, StackTemplate, SynthesizedEnvironment, provision

ACCOUNT, REGION = "123456789012", "us-east-1"


def synthesize(projects: dict[str, list[str]], environments: tuple[str, ...], gitlab_url: str, mlops_path: str):
    os.environ.setdefault("CDK_VALIDATION", "false")
    import aws_cdk as cdk

    from mlops_constructs.ci_access import GitLabCiAccess
    from mlops_constructs.dag_trigger import DagTrigger
    from mlops_constructs.model_repository import ModelRepository

    app = cdk.App(outdir=tempfile.mkdtemp(prefix="ci-app-"), context={"aws:cdk:bundling-stacks": []})
    stack = cdk.Stack(app, "mlops-ci", env=cdk.Environment(account=ACCOUNT, region=REGION))
    provider_arn = None
    # The first environment's trigger; the other environments' CI roles are there for their trust.
    trigger = DagTrigger(stack, "Trigger", environment_name=environments[0])
    for environment in environments:
        access = GitLabCiAccess(
            stack,
            f"Ci-{environment}",
            environment_name=environment,
            gitlab_url=gitlab_url,
            existing_provider_arn=provider_arn,
        )
        provider_arn = access.provider_arn
        for project in projects:
            access.add_model_project_role(
                f"CiRole-{project}",
                project=project,
                gitlab_project_paths=[mlops_path],
                trigger_alias=trigger.add_project(project),
            )
    for project, models in projects.items():
        for model in models:
            ModelRepository(stack, f"Repo-{project}-{model}", project=project, model=model)
    assembly = app.synth()
    template = assembly.get_stack_by_name(stack.stack_name).template
    return SynthesizedEnvironment(
        environment=environments[0],
        account=ACCOUNT,
        region=REGION,
        stacks=[StackTemplate(stack.stack_name, template)],
        pipelines=[],
        ci=CiIdentity(gitlab_url=gitlab_url, mlops_project_path=mlops_path),
    )


def create(synth: SynthesizedEnvironment) -> ProvisionReport:
    import boto3

    session = boto3.session.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name=REGION,  # noqa: S106
    )
    return provision(synth, session)  # AWS_ENDPOINT_URL of the caller's environment: the local AWS
