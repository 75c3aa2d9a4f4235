"""The endpoint-security team's models. A project file is all a model team adds to this repo."""

from mlops_constructs import (
    Autoscaling,
    DeploymentSettings,
    EndpointSettings,
    ModelPipeline,
    QualityGate,
    Retraining,
    ShadowCriteria,
    TrainingSettings,
)
from stacks.project_stack import ProjectStack

PROJECT = "endpoint-security"


def define(stack: ProjectStack) -> None:
    ModelPipeline(
        stack,
        "ProcessClassifier",
        platform=stack.platform,
        project=stack.project,
        model="process-classifier",
        problem_type="classification",
        training=TrainingSettings(instance_type="ml.m5.large", hyperparameters={"n_estimators": 200, "max_depth": 8}),
        gate=QualityGate(metric="f1", threshold=0.85, max_regression=0.01),
        endpoint=EndpointSettings(
            instance_type="ml.c5.large",
            autoscaling=Autoscaling(min_capacity=1, max_capacity=4, target_invocations_per_instance=200),
        ),
        retraining=Retraining(enabled=True),
        # A new version first answers beside the serving one for an hour (its answers captured, never
        # returned), and replaces it only if it errs no more, its p99 latency is at most twice the
        # serving one's (a few milliseconds: noisy), and it predicts the same class for 90 % of requests.
        deployment=DeploymentSettings(
            strategy="shadow",
            bake_seconds=3600,
            shadow=ShadowCriteria(min_invocations=100, max_p99_latency_increase=1.0, min_agreement=0.9),
        ),
    )
