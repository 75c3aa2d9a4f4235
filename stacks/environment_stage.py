"""One cdk.Stage per environment: ``cdk deploy "dev/*"`` deploys exactly one environment."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Environment, Stage
from constructs import Construct

from stacks.platform_stack import PlatformStack
from stacks.project_stack import ProjectStack
from stacks.projects import ProjectDefinition
from stacks.settings import EnvironmentSettings


def project_stack_id(project: str) -> str:
    return f"project-{project}"


class EnvironmentStage(Stage):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        settings: EnvironmentSettings,
        projects: Sequence[ProjectDefinition],
    ) -> None:
        env = Environment(account=settings.account, region=settings.region)
        super().__init__(scope, id, env=env)
        deployed = [project for project in projects if settings.all_projects or project.deployed_to(settings.name)]
        self.platform = PlatformStack(
            self,
            "platform",
            settings=settings,
            projects=[project.name for project in deployed],
            env=env,
            stack_name=f"mlops-{settings.name}-platform",
        )
        self.projects: list[ProjectStack] = []
        for project in deployed:
            stack = ProjectStack(
                self,
                project_stack_id(project.name),
                settings=settings,
                project=project.name,
                define=project.define,
                source=project.source,
                env=env,
                stack_name=f"mlops-{settings.name}-{project.name}",
            )
            # Deploy order only: the project finds platform resources by name, not by export.
            stack.add_stack_dependency(self.platform)
            self.projects.append(stack)
