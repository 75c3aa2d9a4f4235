"""Reusable CDK constructs of the MLOps platform.

Named ``mlops_constructs`` because a local package called ``constructs`` would shadow the CDK's
own ``constructs`` library.

A model team needs ``ModelPipeline`` and its typed settings (``TrainingSettings``, ``QualityGate``,
``EndpointSettings``, ``Autoscaling``, ``Retraining``, ``DataCapture``, ``DriftMonitoring``, ``EvaluationSettings``,
``DeploymentSettings``, ``ShadowCriteria``, ``ABCriteria``), all exported here.
"""

from mlops_constructs.encryption import PlatformKey
from mlops_constructs.log_forwarder import LogForwarder
from mlops_constructs.model_pipeline import ModelPipeline
from mlops_constructs.model_repository import ModelRepository
from mlops_constructs.monitoring import EndpointMonitoring, PlatformDashboard
from mlops_constructs.mwaa import MwaaEnvironment
from mlops_constructs.network import MwaaNetwork
from mlops_constructs.notifications import Notifications
from mlops_constructs.orchestration_policy import PipelineOrchestrationPolicy
from mlops_constructs.platform_ref import PlatformRef
from mlops_constructs.storage import AccessLogsBucket, SecureBucket
from mlops_core.pipeline_config import (
    ABCriteria,
    Autoscaling,
    DataCapture,
    DeploymentSettings,
    DriftMonitoring,
    EndpointSettings,
    EvaluationSettings,
    ProblemType,
    QualityGate,
    Retraining,
    ShadowCriteria,
    TrainingSettings,
)

__all__ = [
    "ABCriteria",
    "AccessLogsBucket",
    "Autoscaling",
    "DataCapture",
    "DriftMonitoring",
    "DeploymentSettings",
    "EndpointMonitoring",
    "EndpointSettings",
    "EvaluationSettings",
    "LogForwarder",
    "ModelPipeline",
    "ModelRepository",
    "MwaaEnvironment",
    "MwaaNetwork",
    "Notifications",
    "PipelineOrchestrationPolicy",
    "PlatformDashboard",
    "PlatformKey",
    "PlatformRef",
    "ProblemType",
    "QualityGate",
    "Retraining",
    "SecureBucket",
    "ShadowCriteria",
    "TrainingSettings",
]
