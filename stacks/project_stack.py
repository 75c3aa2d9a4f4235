"""One stack per model project, holding that project's ModelPipelines."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aws_cdk import Stack
from constructs import Construct

from mlops_constructs.model_pipeline import ModelPipeline
from mlops_constructs.platform_ref import PlatformRef
from mlops_constructs.validation import ConfigurationError, display_path
from mlops_core import names
from stacks.projects import project_file_error
from stacks.settings import EnvironmentSettings

# A ModelPipeline is ~13 CloudFormation resources (with its drift alarm); 32 models stay well under
# the 500-resource limit and the 1 MB template limit per stack with room for the shared handlers.
MAX_MODELS_PER_STACK = 32


class ProjectStack(Stack):
    """The stack a project's file in ``projects/`` fills with ``ModelPipeline`` constructs.

    It finds the platform by name (``self.platform``), so it can be deployed, destroyed or moved
    without touching the platform stack.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        settings: EnvironmentSettings,
        project: str,
        define: Callable[[ProjectStack], None],
        source: Path | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id, termination_protection=settings.termination_protection, **kwargs)
        self.project = names.validate_name("project", project)
        self.settings = settings
        self.platform = PlatformRef.of(
            self,
            names=settings.names,
            log_forwarding=settings.log_forwarding.enabled,
            slack_webhook_secret_name=settings.slack_secret,
            max_trial_bake_seconds=settings.max_trial_bake_seconds,
        )
        source = source or Path(inspect.getsourcefile(define) or "<project file>")
        try:
            define(self)
        except ConfigurationError:
            raise
        except Exception as exc:  # noqa: BLE001 - the team's code: named by file and line, no jsii frames
            raise project_file_error(source, exc, environment=settings.name) from exc
        count = sum(1 for child in self.node.find_all() if isinstance(child, ModelPipeline))
        if count > MAX_MODELS_PER_STACK:
            raise ConfigurationError(
                f"{display_path(source)} (environment {settings.name!r}): project={project!r} defines {count} models; "
                f"one stack holds at most {MAX_MODELS_PER_STACK} (CloudFormation's 500-resource limit): "
                "split the project file into two projects"
            )
