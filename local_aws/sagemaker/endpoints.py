"""Models, endpoint configs and endpoints (Creating/Updating/RollingBack/InService/Failed), and the
runtime's InvokeEndpoint."""

from __future__ import annotations

import hashlib
import json
import logging
import time
import urllib.error
import urllib.request
from typing import Any

from botocore.exceptions import ClientError

from local_aws.sagemaker import variants as routing
from local_aws.sagemaker.core import ACCOUNT_ID, public, validate_name
from local_aws.sagemaker.data_capture import DataCapture, capture_summary, validate_capture_config
from local_aws.sagemaker.endpoint_metrics import METRICS
from local_aws.sagemaker.execution_roles import ExecutionRoles
from local_aws.sagemaker.listing import ListSpec, list_page
from local_aws.sagemaker.runners import Deployment, RunnerContext, RunnerFailure
from local_aws.scenario import rule_matches
from local_aws.wire import AwsError

log = logging.getLogger("local_aws.sagemaker")
MODEL_LIST = ListSpec(
    list_key="Models",
    name_key="ModelName",
    sort_fields={"Name": "ModelName", "CreationTime": "CreationTime"},
    default_order="Descending",
    summary=lambda r: {
        "ModelName": r["ModelName"],
        "ModelArn": r["ModelArn"],
        "CreationTime": r["CreationTime"],
    },
)
CONFIG_LIST = ListSpec(
    list_key="EndpointConfigs",
    name_key="EndpointConfigName",
    sort_fields={"Name": "EndpointConfigName", "CreationTime": "CreationTime"},
    default_order="Descending",
    summary=lambda r: {
        "EndpointConfigName": r["EndpointConfigName"],
        "EndpointConfigArn": r["EndpointConfigArn"],
        "CreationTime": r["CreationTime"],
    },
)
ENDPOINT_LIST = ListSpec(
    list_key="Endpoints",
    name_key="EndpointName",
    sort_fields={"Name": "EndpointName", "CreationTime": "CreationTime", "Status": "EndpointStatus"},
    default_order="Descending",
    status_key="EndpointStatus",
    summary=lambda r: {
        k: r[k] for k in ("EndpointName", "EndpointArn", "CreationTime", "LastModifiedTime", "EndpointStatus")
    },
)

# What AWS reports when a new variant's container never becomes healthy.
DEFAULT_DEPLOY_FAILURE = (
    "The primary container for production variant {variant} did not pass the ping health check. "
    "Please check CloudWatch logs for this endpoint."
)
ENDPOINT_LOG_GROUP = "/aws/sagemaker/Endpoints/{name}"
CUSTOM_ATTRIBUTES_HEADER = "X-Amzn-SageMaker-Custom-Attributes"
INFERENCE_ID_HEADER = "x-amzn-sagemaker-inference-id"  # InvokeEndpoint's InferenceId
# Request headers InvokeEndpoint passes to the model container.
_FORWARDED_HEADERS = {"content-type", "accept", CUSTOM_ATTRIBUTES_HEADER.lower()}


def headers_value(headers: dict[str, str], name: str) -> str:
    """A header's value whatever its case, "" when absent."""
    return next((v for k, v in headers.items() if k.lower() == name), "")


class EndpointOperations(ExecutionRoles, DataCapture):
    # -- models ----------------------------------------------------------------------------------
    def op_CreateModel(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        name = validate_name(p["ModelName"], "modelName")
        arn = self.arn(region, "model", name)
        credentials = self.assume_execution_role(p["ExecutionRoleArn"], arn) if p.get("ExecutionRoleArn") else None
        with self.lock:
            models = self.region(region).models
            if name.lower() in models:
                raise AwsError("ValidationException", f'Cannot create already existing model "{arn}".')
            if not p.get("PrimaryContainer") and not p.get("Containers"):
                raise AwsError("ValidationException", "Either PrimaryContainer or Containers must be specified.")
            for container in [p.get("PrimaryContainer") or {}, *p.get("Containers", [])]:
                if container.get("ModelPackageName"):
                    self._package(region, container["ModelPackageName"])  # type: ignore[attr-defined]
            record = {k: v for k, v in p.items() if k != "Tags"}
            record.update(
                ModelArn=arn,
                CreationTime=time.time(),
                EnableNetworkIsolation=p.get("EnableNetworkIsolation", False),
                _credentials=credentials,
            )
            models[name.lower()] = record
            self.store_tags(region, arn, p.get("Tags"))
        return {"ModelArn": arn}

    def op_DescribeModel(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return public(self._model(region, p["ModelName"]))

    def op_ListModels(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return list_page(list(self.region(region).models.values()), p, MODEL_LIST)

    def op_DeleteModel(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self._model(region, p["ModelName"])
            del self.region(region).models[p["ModelName"].lower()]
        return {}

    def _model(self, region: str, name: str) -> dict[str, Any]:
        model = self.region(region).models.get(name.lower())
        if model is None:
            raise AwsError("ValidationException", f'Could not find model "{self.arn(region, "model", name)}".')
        return model

    # -- endpoint configs ----------------------------------------------------------------------
    def op_CreateEndpointConfig(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        name = validate_name(p["EndpointConfigName"], "endpointConfigName")
        arn = self.arn(region, "endpoint-config", name)
        with self.lock:
            configs = self.region(region).endpoint_configs
            if name.lower() in configs:
                raise AwsError("ValidationException", f'Cannot create already existing endpoint configuration "{arn}".')
            routing.validate_config(p)
            for variant in [*p["ProductionVariants"], *p.get(routing.SHADOW, [])]:
                self._model(region, variant["ModelName"])
            validate_capture_config(p.get("DataCaptureConfig"))
            record = {k: v for k, v in p.items() if k != "Tags"}
            record.update(EndpointConfigArn=arn, CreationTime=time.time())
            configs[name.lower()] = record
            self.store_tags(region, arn, p.get("Tags"))
        return {"EndpointConfigArn": arn}

    def op_DescribeEndpointConfig(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return public(self._config(region, p["EndpointConfigName"]))

    def op_ListEndpointConfigs(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return list_page(list(self.region(region).endpoint_configs.values()), p, CONFIG_LIST)

    def op_DeleteEndpointConfig(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self._config(region, p["EndpointConfigName"])
            del self.region(region).endpoint_configs[p["EndpointConfigName"].lower()]
        return {}

    def _config(self, region: str, name: str) -> dict[str, Any]:
        config = self.region(region).endpoint_configs.get(name.lower())
        if config is None:
            arn = self.arn(region, "endpoint-config", name)
            raise AwsError("ValidationException", f'Could not find endpoint configuration "{arn}".')
        return config

    # -- endpoints -----------------------------------------------------------------------------
    def op_CreateEndpoint(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        name = validate_name(p["EndpointName"], "endpointName")
        arn = self.arn(region, "endpoint", name)
        now = time.time()
        with self.lock:
            endpoints = self.region(region).endpoints
            if name.lower() in endpoints:
                # Exact AWS text: Airflow's SageMakerEndpointOperator matches its prefix to switch to update.
                raise AwsError("ValidationException", f'Cannot create already existing endpoint "{arn}".')
            target = self._deployment_target(region, p["EndpointConfigName"])
            endpoints[name.lower()] = {
                "EndpointName": name,
                "EndpointArn": arn,
                "EndpointConfigName": p["EndpointConfigName"],
                "EndpointStatus": "Creating",
                "CreationTime": now,
                "LastModifiedTime": now,
                "PendingDeploymentSummary": self._pending_summary(target, now),
                "_generation": 1,
                "_fleet": None,
                "_deployment_config": p.get("DeploymentConfig"),
            }
            self.store_tags(region, arn, p.get("Tags"))
        self.events.record("Endpoint", name, "Creating", p["EndpointConfigName"])
        self.spawn(self._deploy, region, name, 1, target, False)
        return {"EndpointArn": arn}

    def op_UpdateEndpoint(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        name = p["EndpointName"]
        now = time.time()
        with self.lock:
            endpoint = self._endpoint(region, name)
            if endpoint["EndpointStatus"] != "InService":
                raise AwsError(
                    "ValidationException",
                    f'Cannot update in-progress endpoint "{endpoint["EndpointArn"]}".'
                    if endpoint["EndpointStatus"] != "Failed"
                    else f'Cannot update endpoint "{endpoint["EndpointArn"]}" in Failed status; '
                    "delete and recreate it.",
                )
            target = self._deployment_target(region, p["EndpointConfigName"])
            endpoint["_generation"] += 1
            generation = endpoint["_generation"]
            endpoint.update(
                EndpointStatus="Updating",
                LastModifiedTime=now,
                PendingDeploymentSummary=self._pending_summary(target, now),
                _deployment_config=p.get("DeploymentConfig"),
            )
            endpoint.pop("FailureReason", None)
        self.events.record("Endpoint", endpoint["EndpointName"], "Updating", p["EndpointConfigName"])
        self.spawn(self._deploy, region, endpoint["EndpointName"], generation, target, True)
        return {"EndpointArn": endpoint["EndpointArn"]}

    def op_DescribeEndpoint(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return public(self._endpoint(region, p["EndpointName"]))

    def op_ListEndpoints(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return list_page(list(self.region(region).endpoints.values()), p, ENDPOINT_LIST)

    def op_DeleteEndpoint(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            endpoint = self._endpoint(region, p["EndpointName"])
            del self.region(region).endpoints[p["EndpointName"].lower()]
            fleet: routing.Fleet | None = endpoint.get("_fleet")
        if fleet is not None:
            self._stop_all(fleet.deployments())
        self.events.record("Endpoint", endpoint["EndpointName"], "Deleted")
        return {}

    def _endpoint(self, region: str, name: str) -> dict[str, Any]:
        endpoint = self.region(region).endpoints.get(name.lower())
        if endpoint is None:
            raise AwsError("ValidationException", f'Could not find endpoint "{self.arn(region, "endpoint", name)}".')
        return endpoint

    def _deployment_target(self, region: str, config_name: str) -> dict[str, Any]:
        """The endpoint config and its models, captured at request time as AWS does."""
        config = public(self._config(region, config_name))
        variants = [*config["ProductionVariants"], *config.get(routing.SHADOW, [])]
        records = [self._model(region, v["ModelName"]) for v in variants]
        models = [public(record) for record in records]
        for model in models:
            model["ResolvedContainer"] = self._resolve_container(region, model)
        # The session SageMaker holds for each variant's model (execution role), if enforced.
        return {
            "config": config,
            "variants": variants,
            "models": models,
            "credentials": [r.get("_credentials") for r in records],
        }

    def _resolve_container(self, region: str, model: dict[str, Any]) -> dict[str, Any]:
        """The container that actually runs: a ``ModelPackageName`` container takes the package's
        image and model data (runners read this; it is not part of DescribeModel)."""
        container = dict(model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0])
        package_name = container.get("ModelPackageName")
        if package_name:
            package = self._package(region, package_name)  # type: ignore[attr-defined]
            packaged = package.get("InferenceSpecification", {}).get("Containers", [{}])[0]
            container.setdefault("Image", packaged.get("Image", ""))
            container.setdefault("ModelDataUrl", packaged.get("ModelDataUrl"))
            container["Environment"] = {**packaged.get("Environment", {}), **container.get("Environment", {})}
        return container

    @staticmethod
    def _image(model: dict[str, Any]) -> str:
        return model["ResolvedContainer"].get("Image", "")

    def _variants(self, target: dict[str, Any], now: float, kind: str = routing.PRODUCTION) -> list[dict[str, Any]]:
        variants = []
        for variant, model in zip(target["variants"], target["models"], strict=True):
            if variant not in target["config"].get(kind, []):
                continue
            image = self._image(model)
            repository = image.split("@")[0].rsplit(":", 1)[0] if ":" in image.split("/")[-1] else image
            digest = hashlib.sha256(image.encode()).hexdigest()
            count = variant.get("InitialInstanceCount", 1)
            weight = float(variant.get("InitialVariantWeight", 1.0))
            variants.append(
                {
                    "VariantName": variant["VariantName"],
                    "DeployedImages": [
                        {
                            "SpecifiedImage": image,
                            "ResolvedImage": f"{repository}@sha256:{digest}",
                            "ResolutionTime": now,
                        }
                    ],
                    "CurrentWeight": weight,
                    "DesiredWeight": weight,
                    "CurrentInstanceCount": count,
                    "DesiredInstanceCount": count,
                }
            )
        return variants

    def _pending_summary(self, target: dict[str, Any], now: float) -> dict[str, Any]:
        summary: dict[str, Any] = {"EndpointConfigName": target["config"]["EndpointConfigName"], "StartTime": now}
        for kind in (routing.PRODUCTION, routing.SHADOW):
            variants = self._variants(target, now, kind)
            for variant, spec in zip(variants, target["config"].get(kind, []), strict=True):
                variant["InstanceType"] = spec.get("InstanceType")
                variant["VariantStatus"] = [
                    {"Status": "Creating", "StartTime": now, "StatusMessage": "Launching instances"}
                ]
            if variants:
                summary[kind] = variants
        return summary

    def _deploy(self, region: str, name: str, generation: int, target: dict[str, Any], is_update: bool) -> None:
        scenario = self.scenario.snapshot()
        section = scenario["endpoints"]
        delay = float(section["update_delay_seconds" if is_update else "create_delay_seconds"])
        time.sleep(delay)
        config = target["config"]
        reason = self._injected_failure(section, name, target, is_update)
        deployments: dict[str, Deployment] = {}
        # The alarm check runs as the first production variant's model role.
        credentials = target["credentials"][0]
        if reason is None:
            try:
                for model, model_credentials in zip(target["models"], target["credentials"], strict=True):
                    self.prepare_container(
                        region, model_credentials, self._image(model), config.get("KmsKeyId"), "endpoint"
                    )
            except RunnerFailure as failure:
                reason = failure.reason
        # Each variant, production or shadow, is its own deployment of its own model, run as that
        # model's role; the runner sees a config holding only that variant.
        for index, (variant, model, model_credentials) in enumerate(
            zip(target["variants"], target["models"], target["credentials"], strict=True)
        ):
            if reason is not None:
                break
            ctx = RunnerContext(
                kind="endpoint",
                name=name,
                region=region,
                description={**config, "ProductionVariants": [variant]},
                scenario=scenario,
                work_dir=self.work_dir(
                    "endpoints", f"{name}-{generation}" + (f"-{variant['VariantName']}" if index else "")
                ),
                client=lambda service, c=model_credentials: self.client(region, service, c),
                log=self.log_writer(
                    region, ENDPOINT_LOG_GROUP.format(name=name), variant["VariantName"], model_credentials
                ),
                models=[model],
                processes=self.processes,
            )
            try:
                deployments[variant["VariantName"]] = self.endpoint_runner.start(ctx) or Deployment()
            except RunnerFailure as failure:
                reason = failure.reason
            except Exception as exc:  # noqa: BLE001 - a runner crash is a failed deployment
                reason = f"{type(exc).__name__}: {exc}"
        if reason is None and is_update:
            reason = self._alarm_rollback_reason(region, name, credentials)
        images = {v["VariantName"]: self._image(m) for v, m in zip(target["variants"], target["models"], strict=True)}
        fleet = routing.fleet_of(config, deployments, images) if reason is None else None
        if fleet is None:
            self._stop_all(list(deployments.values()))
        self._settle(region, name, generation, target, is_update, fleet, reason, delay)

    def _stop_all(self, deployments: list[Deployment]) -> None:
        for deployment in deployments:
            try:
                self.endpoint_runner.stop(deployment)
            except Exception:  # keep stopping the others
                log.exception("could not stop a deployment")

    def _settle(
        self,
        region: str,
        name: str,
        generation: int,
        target: dict[str, Any],
        is_update: bool,
        fleet: routing.Fleet | None,
        reason: str | None,
        delay: float,
    ) -> None:
        now = time.time()
        retired: routing.Fleet | None = None
        with self.lock:
            endpoint = self.region(region).endpoints.get(name.lower())
            if endpoint is None or endpoint["_generation"] != generation:
                retired = fleet  # deleted meanwhile: nothing to serve
                status = None
            elif reason is None:
                retired = endpoint["_fleet"]
                shadows = self._variants(target, now, routing.SHADOW)
                endpoint.update(
                    EndpointStatus="InService",
                    EndpointConfigName=target["config"]["EndpointConfigName"],
                    ProductionVariants=self._variants(target, now),
                    ShadowProductionVariants=shadows or None,
                    LastModifiedTime=now,
                    DataCaptureConfig=capture_summary(target["config"].get("DataCaptureConfig")),
                    _fleet=fleet,
                    _target=target,  # what serves: its capture settings and each variant's role session
                )
                if endpoint.get("_deployment_config"):
                    endpoint["LastDeploymentConfig"] = endpoint["_deployment_config"]
                endpoint.pop("PendingDeploymentSummary", None)
                endpoint.pop("FailureReason", None)
                status = "InService"
            elif is_update:
                endpoint.update(EndpointStatus="RollingBack", LastModifiedTime=now)
                status = "RollingBack"
            else:
                endpoint.update(EndpointStatus="Failed", FailureReason=reason, LastModifiedTime=now)
                endpoint.pop("PendingDeploymentSummary", None)
                status = "Failed"
        if retired is not None:
            self._stop_all(retired.deployments())
        if status:
            self.events.record("Endpoint", name, status, reason)
        if status == "RollingBack":
            # AWS rolls back to the previous config: InService again, the old variant still serving.
            time.sleep(delay / 2)
            with self.lock:
                endpoint = self.region(region).endpoints.get(name.lower())
                if endpoint is None or endpoint["_generation"] != generation:
                    return
                endpoint.update(EndpointStatus="InService", FailureReason=reason, LastModifiedTime=time.time())
                endpoint.pop("PendingDeploymentSummary", None)
            self.events.record("Endpoint", name, "InService", f"rolled back: {reason}")

    def _injected_failure(
        self, section: dict[str, Any], name: str, target: dict[str, Any], is_update: bool
    ) -> str | None:
        variant = target["config"]["ProductionVariants"][0]["VariantName"]
        if self.scenario.take_counter("endpoints", "fail_next_updates" if is_update else "fail_next_creates"):
            return DEFAULT_DEPLOY_FAILURE.format(variant=variant)
        images = [self._image(m) for m in target["models"]]
        for rule in section.get("rules", []):
            if "fail" in rule and any(
                rule_matches(
                    rule["when"],
                    name=name,
                    image=image,
                    endpoint_config=target["config"]["EndpointConfigName"],
                )
                for image in images
            ):
                return str(rule["fail"]) or DEFAULT_DEPLOY_FAILURE.format(variant=variant)
        return None

    def _alarm_rollback_reason(self, region: str, name: str, credentials: dict[str, str] | None = None) -> str | None:
        """Blue/green guardrails: roll back if an auto-rollback alarm is in ALARM during the update
        (read as the endpoint's role, which must be allowed cloudwatch:DescribeAlarms)."""
        with self.lock:
            endpoint = self.region(region).endpoints.get(name.lower())
            config = (endpoint or {}).get("_deployment_config") or {}
        alarms = [a["AlarmName"] for a in config.get("AutoRollbackConfiguration", {}).get("Alarms", [])]
        if not alarms:
            return None
        try:
            found = self.client(region, "cloudwatch", credentials).describe_alarms(AlarmNames=alarms)["MetricAlarms"]
        except ClientError as error:  # e.g. the role may not read the alarms: no safe update
            return f"Deployment rolled back: could not read the auto-rollback alarms: {error}"
        firing = sorted(a["AlarmName"] for a in found if a["StateValue"] == "ALARM")
        if firing:
            return f"Deployment rolled back: CloudWatch alarm(s) {', '.join(firing)} in ALARM state during the update."
        return None

    # -- runtime -------------------------------------------------------------------------------
    @property
    def shadow_copies(self) -> routing.ShadowCopier:
        copier = self.__dict__.get("_shadow_copier")
        return copier if copier is not None else self.__dict__.setdefault("_shadow_copier", routing.ShadowCopier())

    def invoke_endpoint(
        self, region: str, name: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes, dict[str, str]]:
        received = time.perf_counter()
        with self.lock:
            endpoint = self.region(region).endpoints.get(name.lower())
            serving = endpoint is not None and endpoint["EndpointStatus"] in (
                "InService",
                "Updating",
                "RollingBack",
            )
            fleet: routing.Fleet | None = endpoint.get("_fleet") if endpoint is not None else None
            if not serving or fleet is None:
                raise AwsError("ValidationError", f"Endpoint {name} of account {ACCOUNT_ID} not found.")
            serving_target = endpoint.get("_target")
        targeted = next((v for k, v in headers.items() if k.lower() == routing.TARGET_VARIANT_HEADER), None)
        variant = fleet.pick(targeted)
        scenario = self.scenario.snapshot()
        forwarded = {k: v for k, v in headers.items() if k.lower() in _FORWARDED_HEADERS and v}
        url = variant.deployment.url or scenario["endpoints"]["invoke"].get("url")
        status, answer, out_headers, model_us = self._call_container(url, body, forwarded, scenario, name, variant)
        METRICS.record(
            region,
            name,
            variant.name,
            model_us=model_us,
            overhead_us=max(0.0, (time.perf_counter() - received) * 1e6 - model_us),
            status=status,
        )
        request = (body, headers_value(headers, "content-type"))
        inference_id = headers_value(headers, INFERENCE_ID_HEADER) or None
        if status == 200:
            self.capture_invocation(
                region,
                name,
                variant.name,
                serving_target,
                request,
                (answer, out_headers.get("Content-Type", "")),
                inference_id,
            )
        for shadow in fleet.sampled_shadows(variant):
            self.shadow_copies.submit(
                lambda shadow=shadow: self._copy_to_shadow(
                    region, name, shadow, (body, forwarded, inference_id), scenario, serving_target
                )
            )
        out_headers["x-Amzn-Invoked-Production-Variant"] = variant.name
        if status == 200:
            return 200, answer, out_headers
        if status == 0:
            raise AwsError("ModelError", f"Model container at {url} is unreachable: {answer.decode()}", status=424)
        message = answer.decode(errors="replace")
        raise AwsError(
            "ModelError",
            f'Received client error ({status}) from primary with message "{message}". '
            f"See https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logEventViewer:"
            f"group=/aws/sagemaker/Endpoints/{name} in account {ACCOUNT_ID} for more information.",
            status=424,
            OriginalStatusCode=status,
            OriginalMessage=message,
            LogStreamArn=f"arn:aws:logs:{region}:{ACCOUNT_ID}:log-group:/aws/sagemaker/Endpoints/{name}",
        )

    def _copy_to_shadow(
        self,
        region: str,
        name: str,
        shadow: routing.ServingVariant,
        request: tuple[bytes, dict[str, str], str | None],
        scenario: dict[str, Any],
        serving_target: dict[str, Any] | None,
    ) -> None:
        """The shadow variant's copy of a request: measured and captured like production (under the
        shadow variant's name, with the request's InferenceId), its answer never returned."""
        body, forwarded, inference_id = request
        started = time.perf_counter()
        url = shadow.deployment.url or scenario["endpoints"]["invoke"].get("url")
        status, answer, out_headers, model_us = self._call_container(url, body, forwarded, scenario, name, shadow)
        overhead_us = max(0.0, (time.perf_counter() - started) * 1e6 - model_us)
        METRICS.record(region, name, shadow.name, model_us=model_us, overhead_us=overhead_us, status=status)
        if status == 200:
            self.capture_invocation(
                region,
                name,
                shadow.name,
                serving_target,
                (body, headers_value(forwarded, "content-type")),
                (answer, out_headers.get("Content-Type", "")),
                inference_id,
            )

    @staticmethod
    def _call_container(
        url: str | None,
        body: bytes,
        headers: dict[str, str],
        scenario: dict[str, Any],
        endpoint: str,
        variant: routing.ServingVariant,
    ) -> tuple[int, bytes, dict[str, str], float]:
        """(HTTP status, body, headers for the caller, model latency in µs) of one POST /invocations;
        status 0 when the container cannot be reached. Without a container: the scenario's answer
        (``endpoints.invoke.response``, or the status and delay of a rule matching the variant). A
        rule with ``in_front_of_container`` applies to a variant with a container too (a fault put
        in front of a real model: its status answered instead, its delay added to the model's)."""
        behaviour = routing.canned_behaviour(scenario, endpoint, variant.image)
        injected = bool(url) and behaviour.get("in_front_of_container", False)
        started = time.perf_counter()  # an injected delay counts as the model's
        if injected:
            delay = float(behaviour.get("delay_ms", 0)) / 1000
            time.sleep(delay)
            status = int(behaviour.get("status", 200))
            if status != 200:
                body = json.dumps({"error": "injected by the local AWS scenario", "status": status}).encode()
                return status, body, {"Content-Type": "application/json"}, delay * 1e6
        if not url:
            delay = float(behaviour.get("delay_ms", 0)) / 1000
            time.sleep(delay)
            status = int(behaviour.get("status", 200))
            answer = json.dumps(scenario["endpoints"]["invoke"]["response"]) if status == 200 else "model error"
            return status, answer.encode(), {"Content-Type": "application/json"}, delay * 1e6
        request = urllib.request.Request(  # noqa: S310 - loopback URL from the runner or the test
            url.rstrip("/") + "/invocations", data=body, method="POST", headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                answer = response.read()
                out_headers = {"Content-Type": response.headers.get("Content-Type", "application/json")}
                # The model's custom attributes reach the caller as invoke_endpoint's CustomAttributes.
                custom = response.headers.get(CUSTOM_ATTRIBUTES_HEADER)
                if custom:
                    out_headers[CUSTOM_ATTRIBUTES_HEADER] = custom
                return 200, answer, out_headers, (time.perf_counter() - started) * 1e6
        except urllib.error.HTTPError as error:
            return error.code, error.read(), {}, (time.perf_counter() - started) * 1e6
        except OSError as error:
            return 0, str(error).encode(), {}, (time.perf_counter() - started) * 1e6

    def op_UpdateEndpointWeightsAndCapacities(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        name = p["EndpointName"]
        with self.lock:
            endpoint = self._endpoint(region, name)
            if endpoint["EndpointStatus"] != "InService":
                raise AwsError(
                    "ValidationException", f'Cannot update in-progress endpoint "{endpoint["EndpointArn"]}".'
                )
            weights = routing.validate_weights(endpoint, p["DesiredWeightsAndCapacities"])
            counts = {
                d["VariantName"]: d["DesiredInstanceCount"]
                for d in p["DesiredWeightsAndCapacities"]
                if "DesiredInstanceCount" in d
            }
            endpoint["_generation"] += 1
            generation = endpoint["_generation"]
            endpoint.update(EndpointStatus="Updating", LastModifiedTime=time.time())
            for variant in routing.described_variants(endpoint):
                variant["DesiredWeight"] = weights.get(variant["VariantName"], variant["DesiredWeight"])
                variant["DesiredInstanceCount"] = counts.get(variant["VariantName"], variant["DesiredInstanceCount"])
        self.events.record("Endpoint", endpoint["EndpointName"], "Updating", "weights and capacities")
        self.spawn(self._apply_weights, region, endpoint["EndpointName"], generation, weights, counts)
        return {"EndpointArn": endpoint["EndpointArn"]}

    def _apply_weights(
        self, region: str, name: str, generation: int, weights: dict[str, float], counts: dict[str, int]
    ) -> None:
        """After the update's delay the new weights route requests and DescribeEndpoint shows them
        as current (the endpoint serves with the old weights meanwhile, as on AWS)."""
        time.sleep(float(self.scenario.snapshot()["endpoints"]["update_delay_seconds"]))
        with self.lock:
            endpoint = self.region(region).endpoints.get(name.lower())
            if endpoint is None or endpoint["_generation"] != generation:
                return
            endpoint["_fleet"] = endpoint["_fleet"].reweighted(weights)
            for variant in routing.described_variants(endpoint):
                variant["CurrentWeight"] = variant["DesiredWeight"]
                variant["CurrentInstanceCount"] = variant["DesiredInstanceCount"]
            endpoint.update(EndpointStatus="InService", LastModifiedTime=time.time())
        self.events.record("Endpoint", name, "InService", "weights and capacities")
