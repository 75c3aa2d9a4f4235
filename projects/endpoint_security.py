"""The endpoint-security team's models. A project file is all a model team adds to this repo."""

from mlops_constructs import Autoscaling, EndpointSettings, ModelPipeline, QualityGate, Retraining, TrainingSettings
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
    )
