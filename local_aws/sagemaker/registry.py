"""Model registry (model package groups, versioned model packages, approval) and tags."""

from __future__ import annotations

import time
from typing import Any

from local_aws.sagemaker.core import ServiceCore, public, validate_name
from local_aws.sagemaker.listing import ListSpec, list_page
from local_aws.wire import AwsError

APPROVAL_STATUSES = ("Approved", "Rejected", "PendingManualApproval")

GROUP_LIST = ListSpec(
    list_key="ModelPackageGroupSummaryList",
    name_key="ModelPackageGroupName",
    sort_fields={"Name": "ModelPackageGroupName", "CreationTime": "CreationTime"},
    default_order="Ascending",
    summary=lambda r: public(
        {
            k: r.get(k)
            for k in (
                "ModelPackageGroupName",
                "ModelPackageGroupArn",
                "ModelPackageGroupDescription",
                "CreationTime",
                "ModelPackageGroupStatus",
            )
        }
    ),
)
PACKAGE_LIST = ListSpec(
    list_key="ModelPackageSummaryList",
    name_key="ModelPackageName",
    sort_fields={"Name": "_sort_name", "CreationTime": "CreationTime"},
    default_order="Ascending",
    summary=lambda r: public(
        {
            k: r.get(k)
            for k in (
                "ModelPackageName",
                "ModelPackageGroupName",
                "ModelPackageVersion",
                "ModelPackageArn",
                "ModelPackageDescription",
                "CreationTime",
                "ModelPackageStatus",
                "ModelApprovalStatus",
            )
        }
    ),
)
# Fields CreateModelPackage copies verbatim into DescribeModelPackage.
_PACKAGE_FIELDS = (
    "ModelPackageDescription",
    "InferenceSpecification",
    "ValidationSpecification",
    "SourceAlgorithmSpecification",
    "CertifyForMarketplace",
    "MetadataProperties",
    "ModelMetrics",
    "CustomerMetadataProperties",
    "DriftCheckBaselines",
    "Domain",
    "Task",
    "SamplePayloadUrl",
    "AdditionalInferenceSpecifications",
    "SkipModelValidation",
    "SourceUri",
    "SecurityConfig",
    "ModelCard",
    "ModelLifeCycle",
)


def _group_name(value: str) -> str:
    """ModelPackageGroupName parameters accept a name or an ARN."""
    return value.rsplit("/", 1)[-1] if value.startswith("arn:") else value


class RegistryOperations(ServiceCore):
    # -- groups --------------------------------------------------------------------------------
    def op_CreateModelPackageGroup(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        name = validate_name(p["ModelPackageGroupName"], "modelPackageGroupName")
        arn = self.arn(region, "model-package-group", name)
        with self.lock:
            groups = self.region(region).package_groups
            if name.lower() in groups:
                # Airflow's SageMakerHook.create_model_package_group matches this prefix.
                raise AwsError("ValidationException", f"Model Package Group already exists: {arn}")
            groups[name.lower()] = {
                "ModelPackageGroupName": name,
                "ModelPackageGroupArn": arn,
                "ModelPackageGroupDescription": p.get("ModelPackageGroupDescription"),
                "CreationTime": time.time(),
                "CreatedBy": {},
                "ModelPackageGroupStatus": "Completed",
                "_next_version": 1,
            }
            self.store_tags(region, arn, p.get("Tags"))
        return {"ModelPackageGroupArn": arn}

    def op_DescribeModelPackageGroup(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return public(self._group(region, p["ModelPackageGroupName"]))

    def op_ListModelPackageGroups(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return list_page(list(self.region(region).package_groups.values()), p, GROUP_LIST)

    def op_DeleteModelPackageGroup(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            group = self._group(region, p["ModelPackageGroupName"])
            state = self.region(region)
            if any(
                pkg.get("ModelPackageGroupName") == group["ModelPackageGroupName"] for pkg in state.packages.values()
            ):
                raise AwsError(
                    "ConflictException",
                    f"Model Package Group {group['ModelPackageGroupArn']} contains model packages; delete them first.",
                )
            del state.package_groups[group["ModelPackageGroupName"].lower()]
        return {}

    def _group(self, region: str, name_or_arn: str) -> dict[str, Any]:
        name = _group_name(name_or_arn)
        group = self.region(region).package_groups.get(name.lower())
        if group is None:
            arn = self.arn(region, "model-package-group", name)
            raise AwsError("ValidationException", f"ModelPackageGroup {arn} does not exist.")
        return group

    # -- packages ------------------------------------------------------------------------------
    def op_CreateModelPackage(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        status = p.get("ModelApprovalStatus", "PendingManualApproval")
        _check_approval(status)
        now = time.time()
        with self.lock:
            state = self.region(region)
            record: dict[str, Any] = {k: p[k] for k in _PACKAGE_FIELDS if k in p}
            if p.get("ModelPackageGroupName"):
                group = self._group(region, p["ModelPackageGroupName"])
                version = group["_next_version"]
                group["_next_version"] += 1
                group_name = group["ModelPackageGroupName"]
                arn = self.arn(region, "model-package", f"{group_name}/{version}")
                record.update(
                    ModelPackageName=group_name, ModelPackageGroupName=group_name, ModelPackageVersion=version
                )
                record["_sort_name"] = f"{group_name}/{version:09d}"
            elif p.get("ModelPackageName"):
                name = validate_name(p["ModelPackageName"], "modelPackageName")
                arn = self.arn(region, "model-package", name)
                if arn in state.packages:
                    raise AwsError("ValidationException", f"Model Package already exists: {arn}")
                record.update(ModelPackageName=name, _sort_name=name)
            else:
                raise AwsError(
                    "ValidationException",
                    "Either ModelPackageName or ModelPackageGroupName must be specified.",
                )
            record.update(
                ModelPackageArn=arn,
                CreationTime=now,
                LastModifiedTime=now,
                ModelPackageStatus="Completed",
                ModelPackageStatusDetails={"ValidationStatuses": [], "ImageScanStatuses": []},
                CreatedBy={},
                CertifyForMarketplace=p.get("CertifyForMarketplace", False),
            )
            if "ModelPackageVersion" in record:
                record["ModelApprovalStatus"] = status
            state.packages[arn] = record
            self.store_tags(region, arn, p.get("Tags"))
        self.events.record("ModelPackage", arn, record.get("ModelApprovalStatus", "Completed"))
        return {"ModelPackageArn": arn}

    def op_DescribeModelPackage(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return public(self._package(region, p["ModelPackageName"]))

    def op_ListModelPackages(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            packages = list(self.region(region).packages.values())
            if p.get("ModelPackageGroupName"):
                group = self._group(region, p["ModelPackageGroupName"])["ModelPackageGroupName"]
                packages = [pkg for pkg in packages if pkg.get("ModelPackageGroupName") == group]
            if p.get("ModelApprovalStatus"):
                packages = [pkg for pkg in packages if pkg.get("ModelApprovalStatus") == p["ModelApprovalStatus"]]
            kind = p.get("ModelPackageType", "Both")
            if kind == "Versioned":
                packages = [pkg for pkg in packages if "ModelPackageVersion" in pkg]
            elif kind == "Unversioned":
                packages = [pkg for pkg in packages if "ModelPackageVersion" not in pkg]
            return list_page(packages, p, PACKAGE_LIST)

    def op_UpdateModelPackage(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            package = self._package(region, p["ModelPackageArn"])
            if "ModelApprovalStatus" in p:
                _check_approval(p["ModelApprovalStatus"])
                package["ModelApprovalStatus"] = p["ModelApprovalStatus"]
            for key in (
                "ApprovalDescription",
                "InferenceSpecification",
                "SourceUri",
                "ModelCard",
                "ModelLifeCycle",
            ):
                if key in p:
                    package[key] = p[key]
            if "CustomerMetadataProperties" in p:
                package.setdefault("CustomerMetadataProperties", {}).update(p["CustomerMetadataProperties"])
            for key in p.get("CustomerMetadataPropertiesToRemove", []):
                package.get("CustomerMetadataProperties", {}).pop(key, None)
            if "AdditionalInferenceSpecificationsToAdd" in p:
                package.setdefault("AdditionalInferenceSpecifications", []).extend(
                    p["AdditionalInferenceSpecificationsToAdd"]
                )
            package["LastModifiedTime"] = time.time()
            package["LastModifiedBy"] = {}
            arn = package["ModelPackageArn"]
        self.events.record("ModelPackage", arn, package.get("ModelApprovalStatus", "Updated"))
        return {"ModelPackageArn": arn}

    def op_DeleteModelPackage(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            package = self._package(region, p["ModelPackageName"])
            del self.region(region).packages[package["ModelPackageArn"]]
        return {}

    def _package(self, region: str, name_or_arn: str) -> dict[str, Any]:
        packages = self.region(region).packages
        arn = name_or_arn if name_or_arn.startswith("arn:") else self.arn(region, "model-package", name_or_arn)
        package = packages.get(arn) or packages.get(arn.lower())
        if package is None:
            raise AwsError("ValidationException", f"ModelPackage {arn} does not exist.")
        return package

    # -- tags ----------------------------------------------------------------------------------
    def op_AddTags(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.store_tags(region, p["ResourceArn"], p["Tags"])
            tags = self.region(region).tags[p["ResourceArn"]]
            return {"Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}

    def op_ListTags(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            tags = self.region(region).tags.get(p["ResourceArn"], {})
            return {"Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}

    def op_DeleteTags(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            tags = self.region(region).tags.get(p["ResourceArn"], {})
            for key in p["TagKeys"]:
                tags.pop(key, None)
        return {}


def _check_approval(status: str) -> None:
    if status not in APPROVAL_STATUSES:
        raise AwsError(
            "ValidationException",
            f"1 validation error detected: Value '{status}' at 'modelApprovalStatus' failed to satisfy "
            f"constraint: Member must satisfy enum value set: [{', '.join(APPROVAL_STATUSES)}]",
        )
