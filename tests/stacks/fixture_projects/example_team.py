"""The fixture project the platform's stack tests and snapshots synthesize, instead of whatever is in
projects/: adding a model to projects/ never changes a snapshot. One classifier configured with
dicts, one regressor with the typed settings, as model teams write them."""

from mlops_constructs import Autoscaling, EndpointSettings, ModelPipeline, QualityGate, Retraining, TrainingSettings
from stacks.project_stack import ProjectStack

PROJECT = "example-team"


def define(stack: ProjectStack) -> None:
    ModelPipeline(
        stack,
        "Classifier",
        platform=stack.platform,
        project=stack.project,
        model="classifier",
        problem_type="classification",
        training={"instance_type": "ml.m5.large", "hyperparameters": {"n_estimators": 200, "max_depth": 8}},
        gate={"metric": "f1", "threshold": 0.85, "max_regression": 0.01},
        endpoint={
            "instance_type": "ml.c5.large",
            "autoscaling": {"min_capacity": 1, "max_capacity": 4, "target_invocations_per_instance": 200},
        },
        retraining={"enabled": True},
        # tests/e2e: an update first runs as a shadow beside production. A short bake with few requests,
        # and p99 latency allowed to double: on a shared 2-core machine a few milliseconds swing either way.
        deployment={
            "strategy": "shadow",
            "bake_seconds": 8,
            "shadow": {"min_invocations": 20, "max_p99_latency_increase": 1.0, "min_agreement": 0.9},
        },
    )
    ModelPipeline(
        stack,
        "Regressor",
        platform=stack.platform,
        project=stack.project,
        model="regressor",
        problem_type="regression",
        training=TrainingSettings(instance_type="ml.m5.large", hyperparameters={"n_estimators": 100}),
        gate=QualityGate(metric="mse", threshold=0.5, max_regression=0.05),
        endpoint=EndpointSettings(instance_type="ml.c5.large", autoscaling=Autoscaling(min_capacity=1, max_capacity=2)),
        retraining=Retraining(interval_days=7),
    )
