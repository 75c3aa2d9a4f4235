"""Which IAM actions, on which resources and with which context keys, an API call is authorized
against: AWS's Service Authorization Reference, for the operations the platform makes.

A call may need more than one authorization, as on AWS:
- ``CreateTrainingJob`` with a ``RoleArn`` also needs ``iam:PassRole`` on that role;
- ``PutObject`` into a bucket whose default encryption is a KMS key needs ``kms:GenerateDataKey`` on
  the key (S3 calls KMS on the caller's behalf, ``kms:ViaService`` = ``s3.<region>.amazonaws.com``);
  ``GetObject`` of such an object needs ``kms:Decrypt``; ``Publish`` to an encrypted topic needs both;
- ``CreateEndpoint`` authorizes against the endpoint and the endpoint configuration, and with a
  ``KmsKeyId`` in the configuration needs ``kms:CreateGrant`` for SageMaker on that key.

An operation that is not listed here cannot be authorized for a role: :class:`Unmapped` (the
enforcer refuses it with a message naming this file), so a new API call in pipeline code shows up
in the tests instead of being silently allowed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from local_aws.iam.calls import ApiCall
from local_aws.iam.resources import PARTITION, AccountState

Context = dict[str, str | list[str]]


@dataclass(frozen=True)
class PolicyRef:
    """The resource-based policy that applies: a bucket, topic, key, repository or role trust."""

    kind: str  # bucket | topic | key | repository | trust | function
    name: str


@dataclass
class Check:
    action: str
    resource: str
    context: Context = field(default_factory=dict)
    policy: PolicyRef | None = None
    # Checks sharing an ``any_of`` label are alternatives: one allowed is enough (MWAA's Airflow roles).
    any_of: str | None = None


class Unmapped(Exception):
    """No authorization rule for this operation yet."""


@dataclass
class Request:
    call: ApiCall
    account: str
    state: AccountState
    via_service: str | None = None

    @property
    def region(self) -> str:
        return self.call.region

    @property
    def params(self) -> dict[str, Any]:
        return self.call.params

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        return f"arn:{PARTITION}:{service}:{self.region if region else ''}:{self.account if account else ''}:{resource}"


Rule = Callable[[Request], list[Check]]


# -- KMS on behalf of another service ------------------------------------------------------------
def kms_via(req: Request, key_id: str | None, actions: list[str], service: str, extra: Context | None = None):
    """Checks for a service (S3, SNS, SageMaker) using a customer key on the caller's behalf.
    AWS managed keys (aws/s3, aws/sns) need no permission of the caller."""
    if not key_id or req.state.kms_key_is_aws_managed(req.region, key_id):
        return []
    found = req.state.kms_key(req.region, key_id)
    if found is None:
        return []
    key_arn, policy = found
    if policy is None:  # an AWS managed key
        return []
    context: Context = {
        "kms:ViaService": f"{service}.{req.region}.amazonaws.com",
        "kms:CallerAccount": req.account,
        "kms:ResourceAliases": req.state.kms_key_aliases(req.region, key_arn),
    }
    context.update(extra or {})
    return [Check(action, key_arn, dict(context), PolicyRef("key", key_arn)) for action in actions]


def pass_role(req: Request, role_arn: str | None, service: str, associated: str | None = None) -> list[Check]:
    if not role_arn:
        return []
    context: Context = {"iam:PassedToService": service}
    if associated:
        context["iam:AssociatedResourceArn"] = associated
    return [Check("iam:PassRole", role_arn, context)]


# -- SageMaker -----------------------------------------------------------------------------------
_SM_NAMED = {
    # operation: (resource type, request parameter holding its name)
    "TrainingJob": ("training-job", "TrainingJobName"),
    "ProcessingJob": ("processing-job", "ProcessingJobName"),
    "Model": ("model", "ModelName"),
    "EndpointConfig": ("endpoint-config", "EndpointConfigName"),
    "Endpoint": ("endpoint", "EndpointName"),
    "ModelPackageGroup": ("model-package-group", "ModelPackageGroupName"),
    "MonitoringSchedule": ("monitoring-schedule", "MonitoringScheduleName"),
    "Action": ("action", "ActionName"),
    "Artifact": ("artifact", "ArtifactName"),
    "Context": ("context", "ContextName"),
}
_SM_LIST_ONLY = {
    "ListModels",
    "ListTrainingJobs",
    "ListProcessingJobs",
    "ListEndpoints",
    "ListEndpointConfigs",
    "ListModelPackageGroups",
    "ListModelPackages",
    "ListMonitoringSchedules",
    "ListMonitoringExecutions",
    "ListActions",
    "ListArtifacts",
    "ListContexts",
    "ListAssociations",
    "QueryLineage",
}


def sagemaker(req: Request) -> list[Check]:
    op, p = req.call.operation, req.params
    action = f"sagemaker:{op}"
    if op in _SM_LIST_ONLY:
        return [Check(action, "*")]
    if op in ("AddTags", "ListTags", "DeleteTags"):
        return [Check(action, p["ResourceArn"])]
    if op == "UpdateEndpointWeightsAndCapacities":  # Service Authorization Reference: endpoint*
        return [Check(action, req.arn("sagemaker", f"endpoint/{p['EndpointName']}"))]
    if op in ("CreateEndpoint", "UpdateEndpoint"):
        config = p["EndpointConfigName"]
        checks = [
            Check(action, req.arn("sagemaker", f"endpoint/{p['EndpointName']}")),
            Check(action, req.arn("sagemaker", f"endpoint-config/{config}")),
        ]
        # SageMaker creates a grant on the configuration's volume key with the caller's identity.
        key = _endpoint_config_key(req, config)
        return checks + kms_via(req, key, ["kms:CreateGrant"], "sagemaker", {"kms:GrantIsForAWSResource": "true"})
    if op in ("CreateModelPackage", "DescribeModelPackage", "UpdateModelPackage", "DeleteModelPackage"):
        if op == "CreateModelPackage":  # authorized against the version it is about to become
            group = p["ModelPackageGroupName"]
            name = f"{group}/{req.state.next_model_package_version(req.region, group)}"
        else:
            name = p.get("ModelPackageName") or p["ModelPackageArn"]
        arn = name if name.startswith("arn:") else req.arn("sagemaker", f"model-package/{name}")
        context: Context = {}
        if "ModelApprovalStatus" in p:
            context["sagemaker:ModelApprovalStatus"] = p["ModelApprovalStatus"]
        return [Check(action, arn, context)]
    if op == "CreateArtifact":  # an artifact's ARN is named after its source (artifact/<hash>)
        from local_aws.sagemaker.lineage import artifact_id

        return [Check(action, req.arn("sagemaker", f"artifact/{artifact_id(p['Source'])}"))]
    if op == "DescribeArtifact":
        return [Check(action, p["ArtifactArn"])]
    if op == "AddAssociation":  # authorized on both ends; a malformed end is SageMaker's to refuse
        ends = [p[k] for k in ("SourceArn", "DestinationArn") if str(p[k]).startswith("arn:aws:sagemaker:")]
        return [Check(action, end) for end in ends] or [Check(action, "*")]
    for suffix, (kind, param) in _SM_NAMED.items():
        if op.endswith(suffix) and param in p:
            name = p[param]
            arn = name if str(name).startswith("arn:") else req.arn("sagemaker", f"{kind}/{name}")
            checks = [Check(action, arn, _sagemaker_context(op, p))]
            if op in ("CreateTrainingJob", "CreateProcessingJob"):
                checks += pass_role(req, p.get("RoleArn"), "sagemaker.amazonaws.com", arn)
            if op == "CreateModel":
                checks += pass_role(req, p.get("ExecutionRoleArn"), "sagemaker.amazonaws.com", arn)
            if op == "CreateMonitoringSchedule":
                role = p.get("MonitoringScheduleConfig", {}).get("MonitoringJobDefinition", {}).get("RoleArn")
                checks += pass_role(req, role, "sagemaker.amazonaws.com", arn)
            return checks
    raise Unmapped(action)


def _sagemaker_context(op: str, p: dict[str, Any]) -> Context:
    context: Context = {}
    if op == "CreateTrainingJob":
        resources = p.get("ResourceConfig", {})
        context["sagemaker:InstanceTypes"] = [resources.get("InstanceType", "")]
        if resources.get("VolumeKmsKeyId"):
            context["sagemaker:VolumeKmsKeyArn"] = resources["VolumeKmsKeyId"]
        if p.get("OutputDataConfig", {}).get("KmsKeyId"):
            context["sagemaker:OutputKmsKeyArn"] = p["OutputDataConfig"]["KmsKeyId"]
        context["sagemaker:NetworkIsolation"] = str(bool(p.get("EnableNetworkIsolation"))).lower()
        context["sagemaker:MaxRuntimeInSeconds"] = str(p.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", ""))
    if op == "CreateProcessingJob":
        cluster = p.get("ProcessingResources", {}).get("ClusterConfig", {})
        context["sagemaker:InstanceTypes"] = [cluster.get("InstanceType", "")]
        if cluster.get("VolumeKmsKeyId"):
            context["sagemaker:VolumeKmsKeyArn"] = cluster["VolumeKmsKeyId"]
    if op == "CreateEndpointConfig":
        variants = [*p.get("ProductionVariants", []), *p.get("ShadowProductionVariants", [])]
        context["sagemaker:InstanceTypes"] = [v.get("InstanceType", "") for v in variants]
        if p.get("KmsKeyId"):
            context["sagemaker:VolumeKmsKeyArn"] = p["KmsKeyId"]
    return {k: v for k, v in context.items() if v not in ("", [""])}


def _endpoint_config_key(req: Request, config: str) -> str | None:
    return req.state.endpoint_config_kms_key(req.region, config)


def sagemaker_runtime(req: Request) -> list[Check]:
    if req.call.operation != "InvokeEndpoint":
        raise Unmapped(f"sagemaker:{req.call.operation}")
    context: Context = {}
    if req.params.get("TargetModel"):
        context["sagemaker:TargetModel"] = req.params["TargetModel"]
    return [Check("sagemaker:InvokeEndpoint", req.arn("sagemaker", f"endpoint/{req.params['EndpointName']}"), context)]


# -- S3 ------------------------------------------------------------------------------------------
_S3_OBJECT_ACTIONS = {
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "DeleteObject": "s3:DeleteObject",
    "GetObjectTagging": "s3:GetObjectTagging",
    "PutObjectTagging": "s3:PutObjectTagging",
}
_S3_BUCKET_ACTIONS = {
    "ListObjects": "s3:ListBucket",
    "ListObjectsV2": "s3:ListBucket",
    "HeadBucket": "s3:ListBucket",
    "ListObjectVersions": "s3:ListBucketVersions",
    "GetBucketLocation": "s3:GetBucketLocation",
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
}


def s3(req: Request) -> list[Check]:
    op, p = req.call.operation, req.params
    bucket = p.get("Bucket")
    policy = PolicyRef("bucket", bucket) if bucket else None
    if op == "ListBuckets":
        return [Check("s3:ListAllMyBuckets", "*")]
    if op in _S3_BUCKET_ACTIONS:
        context: Context = {}
        if op.startswith("ListObject"):
            context["s3:prefix"] = p.get("Prefix", "")
            if p.get("Delimiter"):
                context["s3:delimiter"] = p["Delimiter"]
        return [Check(_S3_BUCKET_ACTIONS[op], f"arn:{PARTITION}:s3:::{bucket}", context, policy)]
    if op == "DeleteObjects":
        keys = [o["Key"] for o in p.get("Delete", {}).get("Objects", [])]
        return [Check("s3:DeleteObject", f"arn:{PARTITION}:s3:::{bucket}/{k}", {}, policy) for k in keys]
    if op == "CopyObject":
        source = str(p.get("CopySource", "")).lstrip("/").split("?")[0]
        source_bucket, _, source_key = source.partition("/")
        return [
            Check("s3:GetObject", f"arn:{PARTITION}:s3:::{source}", {}, PolicyRef("bucket", source_bucket)),
            Check("s3:PutObject", f"arn:{PARTITION}:s3:::{bucket}/{p['Key']}", {}, policy),
            *_s3_kms(req, "GetObject", source_bucket, source_key),
            *_s3_kms(req, "PutObject", bucket, p["Key"]),
        ]
    if op in _S3_OBJECT_ACTIONS:
        action = _S3_OBJECT_ACTIONS[op]
        if action == "s3:GetObject" and p.get("VersionId"):
            action = "s3:GetObjectVersion"
        arn = f"arn:{PARTITION}:s3:::{bucket}/{p['Key']}"
        return [Check(action, arn, {}, policy), *_s3_kms(req, op, bucket, p["Key"])]
    raise Unmapped(f"s3:{op}")


def _s3_kms(req: Request, op: str, bucket: str, key: str) -> list[Check]:
    p = req.params
    context: Context = {"kms:EncryptionContext:aws:s3:arn": f"arn:{PARTITION}:s3:::{bucket}/{key}"}
    if op in ("GetObject", "HeadObject"):
        return kms_via(req, req.state.object_kms_key(bucket, key), ["kms:Decrypt"], "s3", context)
    if op in ("PutObject", "CreateMultipartUpload", "CopyObject"):
        wanted = p.get("SSEKMSKeyId") or req.state.bucket_default_kms_key(bucket)
        if p.get("ServerSideEncryption") not in (None, "aws:kms", "aws:kms:dsse"):
            return []
        actions = ["kms:GenerateDataKey"] + (["kms:Decrypt"] if op == "CreateMultipartUpload" else [])
        return kms_via(req, wanted, actions, "s3", context)
    return []


# -- SNS, KMS, ECR, Logs, CloudWatch, SSM, Secrets Manager, Application Auto Scaling ---------------
def sns(req: Request) -> list[Check]:
    op, p = req.call.operation, req.params
    if op == "Publish":
        topic = p.get("TopicArn") or p.get("TargetArn")
        checks = [Check("sns:Publish", topic, {}, PolicyRef("topic", topic))]
        key = req.state.topic_kms_key(topic)
        return checks + kms_via(req, key, ["kms:GenerateDataKey", "kms:Decrypt"], "sns")
    if op in ("GetTopicAttributes", "ListSubscriptionsByTopic", "Subscribe"):
        return [Check(f"sns:{op}", p["TopicArn"], {}, PolicyRef("topic", p["TopicArn"]))]
    if op == "ListTopics":
        return [Check("sns:ListTopics", "*")]
    raise Unmapped(f"sns:{op}")


_KMS_KEY_OPS = {
    "Decrypt",
    "Encrypt",
    "ReEncrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "DescribeKey",
    "CreateGrant",
    "GetKeyPolicy",
}


def kms(req: Request) -> list[Check]:
    op, p = req.call.operation, req.params
    if op not in _KMS_KEY_OPS:
        raise Unmapped(f"kms:{op}")
    found = req.state.kms_key(req.region, p.get("KeyId", ""))
    if found is None:
        return []  # an unknown key: KMS itself answers NotFoundException
    key_arn, policy = found
    context: Context = {
        "kms:CallerAccount": req.account,
        "kms:ResourceAliases": req.state.kms_key_aliases(req.region, key_arn),
    }
    if req.via_service:
        context["kms:ViaService"] = f"{req.via_service.split('.')[0]}.{req.region}.amazonaws.com"
    if op == "CreateGrant":
        context["kms:GrantIsForAWSResource"] = "true" if req.via_service else "false"
        context["kms:GrantOperations"] = list(p.get("Operations", []))
        if p.get("GranteePrincipal"):
            context["kms:GranteePrincipal"] = p["GranteePrincipal"]
    action = "kms:ReEncryptFrom" if op == "ReEncrypt" else f"kms:{op}"
    return [Check(action, key_arn, context, PolicyRef("key", key_arn) if policy is not None else None)]


def ecr(req: Request) -> list[Check]:
    op, p = req.call.operation, req.params
    if op == "GetAuthorizationToken":
        return [Check("ecr:GetAuthorizationToken", "*")]
    if op in ("DescribeRepositories",) and not p.get("repositoryNames"):
        return [Check("ecr:DescribeRepositories", "*")]
    names = p.get("repositoryNames") or [p.get("repositoryName")]
    if not all(names):
        raise Unmapped(f"ecr:{op}")
    return [
        Check(f"ecr:{op}", req.arn("ecr", f"repository/{name}"), {}, PolicyRef("repository", name)) for name in names
    ]


def logs(req: Request) -> list[Check]:
    op, p = req.call.operation, req.params
    group = p.get("logGroupName")
    if op == "DescribeLogGroups":
        return [Check("logs:DescribeLogGroups", "*")]
    if group is None:
        raise Unmapped(f"logs:{op}")
    group_arn = req.arn("logs", f"log-group:{group}")
    if op in ("CreateLogStream", "PutLogEvents", "GetLogEvents"):
        return [Check(f"logs:{op}", f"{group_arn}:log-stream:{p['logStreamName']}")]
    if op in ("CreateLogGroup", "DescribeLogStreams", "FilterLogEvents", "PutRetentionPolicy", "DeleteLogGroup"):
        return [Check(f"logs:{op}", group_arn)]
    raise Unmapped(f"logs:{op}")


def cloudwatch(req: Request) -> list[Check]:
    op, p = req.call.operation, req.params
    if op == "PutMetricData":
        return [Check("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": p.get("Namespace", "")})]
    if op in ("GetMetricData", "GetMetricStatistics", "ListMetrics"):
        return [Check(f"cloudwatch:{op}", "*")]
    if op == "DescribeAlarms":
        alarms = p.get("AlarmNames") or []
        if not alarms:
            return [Check("cloudwatch:DescribeAlarms", req.arn("cloudwatch", "alarm:*"))]
        return [Check("cloudwatch:DescribeAlarms", req.arn("cloudwatch", f"alarm:{name}")) for name in alarms]
    if op in ("PutMetricAlarm", "SetAlarmState", "DescribeAlarmHistory"):
        return [Check(f"cloudwatch:{op}", req.arn("cloudwatch", f"alarm:{p['AlarmName']}"))]
    raise Unmapped(f"cloudwatch:{op}")


def ssm(req: Request) -> list[Check]:
    op, p = req.call.operation, req.params
    names = p.get("Names") or [p.get("Name")]
    if op not in ("GetParameter", "GetParameters") or not all(names):
        raise Unmapped(f"ssm:{op}")
    return [Check(f"ssm:{op}", req.arn("ssm", f"parameter/{n.lstrip('/')}")) for n in names]


def secretsmanager(req: Request) -> list[Check]:
    op, p = req.call.operation, req.params
    if op not in ("GetSecretValue", "DescribeSecret"):
        raise Unmapped(f"secretsmanager:{op}")
    secret_id = p["SecretId"]
    arn = req.state.secret_arn(req.region, secret_id)
    if arn is None:  # Secrets Manager answers ResourceNotFoundException; ask for a name-shaped ARN
        arn = secret_id if secret_id.startswith("arn:") else req.arn("secretsmanager", f"secret:{secret_id}-??????")
    return [Check(f"secretsmanager:{op}", arn, {"secretsmanager:SecretId": arn})]


def application_autoscaling(req: Request) -> list[Check]:
    op, p = req.call.operation, req.params
    action = f"application-autoscaling:{op}"
    if op.startswith("Describe"):
        return [Check(action, "*")]
    if op in ("RegisterScalableTarget", "PutScalingPolicy", "DeregisterScalableTarget", "DeleteScalingPolicy"):
        # A scalable target's ARN carries an id AWS generates; derive a stable one from what it scales.
        digest = hashlib.sha256(f"{p['ServiceNamespace']}/{p['ResourceId']}".encode()).hexdigest()[:32]
        context: Context = {
            "application-autoscaling:service-namespace": p["ServiceNamespace"],
            "application-autoscaling:scalable-dimension": p.get("ScalableDimension", ""),
        }
        return [Check(action, req.arn("application-autoscaling", f"scalable-target/{digest}"), context)]
    raise Unmapped(action)


def sts(req: Request) -> list[Check]:
    op, p = req.call.operation, req.params
    if op == "GetCallerIdentity":
        return []  # needs no permission (STS API reference)
    if op == "AssumeRole":
        context: Context = {"sts:RoleSessionName": p.get("RoleSessionName", "")}
        if p.get("ExternalId"):
            context["sts:ExternalId"] = p["ExternalId"]
        return [Check("sts:AssumeRole", p["RoleArn"], context, PolicyRef("trust", p["RoleArn"]))]
    raise Unmapped(f"sts:{op}")


AIRFLOW_ROLES = ("Admin", "Op", "User", "Viewer", "Public")


def mwaa(req: Request) -> list[Check]:
    if req.call.operation == "InvokeRestApi":
        # MWAA runs the call as an Airflow role of the environment the caller may invoke as; the
        # resource is that role (arn:...:airflow:<region>:<account>:role/<environment>/<role>).
        name = req.params["Name"]
        return [
            Check("airflow:InvokeRestApi", req.arn("airflow", f"role/{name}/{role}"), any_of="airflow-role")
            for role in AIRFLOW_ROLES
        ]
    if req.call.operation in ("GetEnvironment", "CreateCliToken"):
        return [Check(f"airflow:{req.call.operation}", req.arn("airflow", f"environment/{req.params['Name']}"))]
    raise Unmapped(f"airflow:{req.call.operation}")


def iam(req: Request) -> list[Check]:
    op, p = req.call.operation, req.params
    if op in ("GetRole",):
        return [Check(f"iam:{op}", f"arn:{PARTITION}:iam::{req.account}:role/{p['RoleName']}")]
    raise Unmapped(f"iam:{op}")


def lambda_(req: Request) -> list[Check]:
    """Lambda Developer Guide, "Control access to Lambda function URLs": a request to a URL with
    auth type AWS_IAM needs lambda:InvokeFunctionUrl (condition key lambda:FunctionUrlAuthType) and,
    for URLs created since October 2025, lambda:InvokeFunction, on the function or the alias the
    URL belongs to, from the caller's identity policy or the function's resource policy."""
    op, p = req.call.operation, req.params
    if op == "InvokeFunctionUrl":
        target = req.state.lambda_url_target(p["UrlId"])
        if target is None:
            return []  # no such URL: the service answers 404
        arn, auth_type, _ = target
        if auth_type != "AWS_IAM":
            raise Unmapped("lambda:InvokeFunctionUrl with auth type NONE")
        policy = PolicyRef("function", arn)
        return [
            Check("lambda:InvokeFunctionUrl", arn, {"lambda:FunctionUrlAuthType": "AWS_IAM"}, policy),
            Check("lambda:InvokeFunction", arn, {"lambda:InvokedViaFunctionUrl": "true"}, policy),
        ]
    if op in ("Invoke", "GetFunctionUrlConfig"):
        name, qualifier = str(p["FunctionName"]), p.get("Qualifier")
        arn = name if name.startswith("arn:") else req.arn("lambda", f"function:{name}")
        if qualifier and arn.count(":") == 6:
            arn = f"{arn}:{qualifier}"
        action = "lambda:InvokeFunction" if op == "Invoke" else "lambda:GetFunctionUrlConfig"
        return [Check(action, arn, {}, PolicyRef("function", arn))]
    raise Unmapped(f"lambda:{op}")


RULES: dict[str, Rule] = {
    "sagemaker": sagemaker,
    "sagemaker-runtime": sagemaker_runtime,
    "s3": s3,
    "sns": sns,
    "kms": kms,
    "ecr": ecr,
    "logs": logs,
    "cloudwatch": cloudwatch,
    "ssm": ssm,
    "secretsmanager": secretsmanager,
    "application-autoscaling": application_autoscaling,
    "sts": sts,
    "mwaa": mwaa,
    "iam": iam,
    "lambda": lambda_,
}


def checks_for(req: Request) -> list[Check]:
    rule = RULES.get(req.call.service)
    if rule is None:
        raise Unmapped(f"{req.call.service}:{req.call.operation}")
    return rule(req)
