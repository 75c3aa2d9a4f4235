"""Training and processing jobs: InProgress, then Completed/Failed/Stopped, as SageMaker reports them."""

from __future__ import annotations

import threading
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from local_aws.sagemaker.core import public, validate_name
from local_aws.sagemaker.execution_roles import ExecutionRoles
from local_aws.sagemaker.listing import ListSpec, list_page
from local_aws.sagemaker.runners import JobOutcome, RunnerContext, RunnerFailure, split_s3_uri
from local_aws.scenario import rule_matches
from local_aws.wire import AwsError

TRAINING_LIST = ListSpec(
    list_key="TrainingJobSummaries",
    name_key="TrainingJobName",
    sort_fields={"Name": "TrainingJobName", "CreationTime": "CreationTime", "Status": "TrainingJobStatus"},
    default_order="Ascending",
    status_key="TrainingJobStatus",
    summary=lambda r: public(
        {
            k: r.get(k)
            for k in (
                "TrainingJobName",
                "TrainingJobArn",
                "CreationTime",
                "TrainingEndTime",
                "LastModifiedTime",
                "TrainingJobStatus",
                "SecondaryStatus",
            )
        }
    ),
)
PROCESSING_LIST = ListSpec(
    list_key="ProcessingJobSummaries",
    name_key="ProcessingJobName",
    sort_fields={
        "Name": "ProcessingJobName",
        "CreationTime": "CreationTime",
        "Status": "ProcessingJobStatus",
    },
    default_order="Ascending",
    status_key="ProcessingJobStatus",
    summary=lambda r: public(
        {
            k: r.get(k)
            for k in (
                "ProcessingJobName",
                "ProcessingJobArn",
                "CreationTime",
                "ProcessingEndTime",
                "LastModifiedTime",
                "ProcessingJobStatus",
                "FailureReason",
                "ExitMessage",
            )
        }
    ),
)

TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
PROCESSING_LOG_GROUP = "/aws/sagemaker/ProcessingJobs"


class _Stopped(Exception):
    pass


class JobOperations(ExecutionRoles):
    # -- training ------------------------------------------------------------------------------
    def op_CreateTrainingJob(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        name = validate_name(p["TrainingJobName"], "trainingJobName")
        arn = self.arn(region, "training-job", name)
        credentials = self.assume_execution_role(p["RoleArn"], arn)
        now = time.time()
        with self.lock:
            jobs = self.region(region).training_jobs
            if name.lower() in jobs:
                raise AwsError(
                    "ResourceInUse",
                    "Training job names must be unique within an AWS account and region, and a training "
                    f"job with this name already exists ({arn})",
                )
            record = {k: v for k, v in p.items() if k != "Tags"}
            record.update(
                TrainingJobArn=arn,
                TrainingJobStatus="InProgress",
                SecondaryStatus="Starting",
                CreationTime=now,
                LastModifiedTime=now,
                SecondaryStatusTransitions=[
                    {
                        "Status": "Starting",
                        "StartTime": now,
                        "StatusMessage": "Preparing the instances for training",
                    }
                ],
                EnableNetworkIsolation=p.get("EnableNetworkIsolation", False),
                EnableInterContainerTrafficEncryption=p.get("EnableInterContainerTrafficEncryption", False),
                EnableManagedSpotTraining=p.get("EnableManagedSpotTraining", False),
                _stop=threading.Event(),
                _credentials=credentials,
            )
            jobs[name.lower()] = record
            self.store_tags(region, arn, p.get("Tags"))
        self.events.record("TrainingJob", name, "InProgress")
        self.spawn(self._run_training, region, name)
        return {"TrainingJobArn": arn}

    def op_DescribeTrainingJob(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return public(self._training(region, p["TrainingJobName"]))

    def op_ListTrainingJobs(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return list_page(list(self.region(region).training_jobs.values()), p, TRAINING_LIST)

    def op_StopTrainingJob(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            job = self._training(region, p["TrainingJobName"])
            if job["TrainingJobStatus"] != "InProgress":
                raise AwsError(
                    "ValidationException",
                    f"The request was rejected because the training job is in status {job['TrainingJobStatus']}.",
                )
            job["TrainingJobStatus"] = "Stopping"
            self._transition(job, "Stopping", "Stopping the training job")
            job["_stop"].set()
        self.events.record("TrainingJob", job["TrainingJobName"], "Stopping")
        return {}

    def _training(self, region: str, name: str) -> dict[str, Any]:
        job = self.region(region).training_jobs.get(name.lower())
        if job is None:
            raise AwsError("ValidationException", "Requested resource not found.")
        return job

    @staticmethod
    def _transition(job: dict[str, Any], status: str, message: str) -> None:
        now = time.time()
        transitions = job["SecondaryStatusTransitions"]
        if transitions and "EndTime" not in transitions[-1]:
            transitions[-1]["EndTime"] = now
        transitions.append({"Status": status, "StartTime": now, "StatusMessage": message})
        job["SecondaryStatus"] = status
        job["LastModifiedTime"] = now

    def _secondary(self, region: str, name: str, status: str, message: str, **fields: Any) -> None:
        with self.lock:
            job = self._training(region, name)
            if job["_stop"].is_set():
                raise _Stopped
            self._transition(job, status, message)
            job.update(fields)

    def _run_training(self, region: str, name: str) -> None:
        scenario = self.scenario.snapshot()
        section = scenario["training"]
        step = float(section["delay_seconds"]) / 4
        with self.lock:
            job = self._training(region, name)
            stop: threading.Event = job["_stop"]
            credentials = job["_credentials"]
            description = public(job)
        output = description["OutputDataConfig"]["S3OutputPath"].rstrip("/")
        artifacts = f"{output}/{name}/output/model.tar.gz"
        ctx = RunnerContext(
            kind="training",
            name=name,
            region=region,
            description=description,
            scenario=scenario,
            work_dir=self.work_dir("training", name),
            client=lambda service: self.client(region, service, credentials),
            log=self.log_writer(region, TRAINING_LOG_GROUP, name, credentials),
            stop_requested=stop,
            processes=self.processes,
            model_artifacts_uri=artifacts,
        )
        # As on AWS, StoppingCondition.MaxRuntimeInSeconds stops a job that runs too long (a real
        # runner's process may hang); the job ends Stopped with SecondaryStatus MaxRuntimeExceeded.
        max_runtime = description.get("StoppingCondition", {}).get("MaxRuntimeInSeconds")
        watchdog = threading.Timer(float(max_runtime or 0), self._max_runtime_reached, (region, name))
        watchdog.daemon = True
        if max_runtime:
            watchdog.start()
        try:
            if stop.wait(step):
                raise _Stopped
            self._secondary(region, name, "Downloading", "Starting the training job", TrainingStartTime=time.time())
            self.prepare_container(
                region,
                credentials,
                description["AlgorithmSpecification"].get("TrainingImage", ""),
                description.get("ResourceConfig", {}).get("VolumeKmsKeyId"),
                "training job",
            )
            if section["require_input_data"]:
                for channel in description.get("InputDataConfig", []):
                    uri = channel.get("DataSource", {}).get("S3DataSource", {}).get("S3Uri")
                    if uri:
                        self._require_objects(
                            region, uri, description.get("RoleArn", ""), "Data download failed:", credentials
                        )
            reason = self._failure_rule("training", section, description, name)
            if stop.wait(step):
                raise _Stopped
            self._secondary(region, name, "Training", "Training image download completed. Training in progress.")
            if reason:
                ctx.log(f"injected failure: {reason}")
                raise RunnerFailure(reason)
            outcome = self.job_runner.run_training(ctx) or JobOutcome()
            if stop.wait(step):
                raise _Stopped
            self._secondary(region, name, "Uploading", "Uploading generated training model")
            if stop.wait(step):
                raise _Stopped
            self._finish_training(
                region,
                name,
                "Completed",
                "Training job completed",
                ModelArtifacts={"S3ModelArtifacts": artifacts},
                FinalMetricDataList=outcome.final_metrics or None,
            )
        except _Stopped:
            time.sleep(step)  # AWS spends a while in Stopping (the container gets SIGTERM first)
            with self.lock:
                exceeded = self._training(region, name).get("_max_runtime_exceeded", False)
            if exceeded:
                self._finish_training(
                    region,
                    name,
                    "Stopped",
                    "Training job stopped: MaxRuntimeInSeconds reached",
                    secondary="MaxRuntimeExceeded",
                )
            else:
                self._finish_training(region, name, "Stopped", "Training job stopped")
        except Exception as exc:  # noqa: BLE001 - every runner error becomes the job's FailureReason
            reason = _reason(exc)
            self._finish_training(region, name, "Failed", f"Training job failed. {reason}", FailureReason=reason)
        finally:
            watchdog.cancel()

    def _max_runtime_reached(self, region: str, name: str) -> None:
        with self.lock:
            job = self._training(region, name)
            if job["TrainingJobStatus"] != "InProgress":
                return
            job["_max_runtime_exceeded"] = True
            job["TrainingJobStatus"] = "Stopping"
            self._transition(job, "Stopping", "Stopping the training job: MaxRuntimeInSeconds reached")
            job["_stop"].set()
        self.events.record("TrainingJob", name, "Stopping", "MaxRuntimeInSeconds reached")

    def _finish_training(
        self, region: str, name: str, status: str, message: str, secondary: str | None = None, **fields: Any
    ) -> None:
        now = time.time()
        with self.lock:
            job = self._training(region, name)
            self._transition(job, secondary or status, message)
            job["SecondaryStatusTransitions"][-1]["EndTime"] = now
            job["TrainingJobStatus"] = status
            job.setdefault("TrainingStartTime", now)
            job["TrainingEndTime"] = now
            seconds = max(1, int(round(now - job["TrainingStartTime"])))
            job["TrainingTimeInSeconds"] = seconds
            job["BillableTimeInSeconds"] = seconds * int(job.get("ResourceConfig", {}).get("InstanceCount", 1))
            job.update(fields)
        self.events.record("TrainingJob", name, status, fields.get("FailureReason"))

    # -- processing ----------------------------------------------------------------------------
    def op_CreateProcessingJob(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        name = validate_name(p["ProcessingJobName"], "processingJobName")
        arn = self.arn(region, "processing-job", name)
        credentials = self.assume_execution_role(p["RoleArn"], arn)
        now = time.time()
        with self.lock:
            jobs = self.region(region).processing_jobs
            if name.lower() in jobs:
                raise AwsError(
                    "ResourceInUse",
                    "Job name must be unique within an AWS account and region, and a job with this name "
                    f"already exists ({arn})",
                )
            record = {k: v for k, v in p.items() if k != "Tags"}
            record.update(
                ProcessingJobArn=arn,
                ProcessingJobStatus="InProgress",
                CreationTime=now,
                LastModifiedTime=now,
                _stop=threading.Event(),
                _credentials=credentials,
            )
            jobs[name.lower()] = record
            self.store_tags(region, arn, p.get("Tags"))
        self.events.record("ProcessingJob", name, "InProgress")
        self.spawn(self._run_processing, region, name)
        return {"ProcessingJobArn": arn}

    def op_DescribeProcessingJob(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return public(self._processing(region, p["ProcessingJobName"]))

    def op_ListProcessingJobs(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return list_page(list(self.region(region).processing_jobs.values()), p, PROCESSING_LIST)

    def op_StopProcessingJob(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            job = self._processing(region, p["ProcessingJobName"])
            if job["ProcessingJobStatus"] != "InProgress":
                raise AwsError(
                    "ValidationException",
                    f"The request was rejected because the job is in status {job['ProcessingJobStatus']}.",
                )
            job["ProcessingJobStatus"] = "Stopping"
            job["LastModifiedTime"] = time.time()
            job["_stop"].set()
        self.events.record("ProcessingJob", job["ProcessingJobName"], "Stopping")
        return {}

    def _processing(self, region: str, name: str) -> dict[str, Any]:
        job = self.region(region).processing_jobs.get(name.lower())
        if job is None:
            raise AwsError("ValidationException", f"Could not find requested job with name {name}")
        return job

    def _run_processing(self, region: str, name: str) -> None:
        scenario = self.scenario.snapshot()
        section = scenario["processing"]
        step = float(section["delay_seconds"]) / 2
        with self.lock:
            job = self._processing(region, name)
            stop: threading.Event = job["_stop"]
            credentials = job["_credentials"]
            description = public(job)
        ctx = RunnerContext(
            kind="processing",
            name=name,
            region=region,
            description=description,
            scenario=scenario,
            work_dir=self.work_dir("processing", name),
            client=lambda service: self.client(region, service, credentials),
            log=self.log_writer(region, PROCESSING_LOG_GROUP, name, credentials),
            stop_requested=stop,
            processes=self.processes,
        )
        try:
            if stop.wait(step):
                raise _Stopped
            with self.lock:
                job["ProcessingStartTime"] = job["LastModifiedTime"] = time.time()
            self.prepare_container(
                region,
                credentials,
                description.get("AppSpecification", {}).get("ImageUri", ""),
                description.get("ProcessingResources", {}).get("ClusterConfig", {}).get("VolumeKmsKeyId"),
                "processing job",
            )
            if section["require_input_data"]:
                for item in description.get("ProcessingInputs", []):
                    uri = item.get("S3Input", {}).get("S3Uri")
                    if uri:
                        self._require_objects(region, uri, description.get("RoleArn", ""), "", credentials)
            reason = self._failure_rule("processing", section, description, name)
            if reason:
                ctx.log(f"injected failure: {reason}")
                raise RunnerFailure(reason)
            outcome = self.job_runner.run_processing(ctx) or JobOutcome()
            if stop.wait(step):
                raise _Stopped
            self._finish_processing(region, name, "Completed", ExitMessage=outcome.exit_message or None)
        except _Stopped:
            time.sleep(step)  # AWS spends a while in Stopping
            self._finish_processing(region, name, "Stopped")
        except Exception as exc:  # noqa: BLE001 - every runner error becomes the job's FailureReason
            reason = _reason(exc)
            self._finish_processing(region, name, "Failed", FailureReason=reason, ExitMessage=reason)

    def _finish_processing(self, region: str, name: str, status: str, **fields: Any) -> None:
        now = time.time()
        with self.lock:
            job = self._processing(region, name)
            job.setdefault("ProcessingStartTime", now)
            job.update(ProcessingJobStatus=status, ProcessingEndTime=now, LastModifiedTime=now, **fields)
        self.events.record("ProcessingJob", name, status, fields.get("FailureReason"))

    # -- shared --------------------------------------------------------------------------------
    def _failure_rule(self, kind: str, section: dict[str, Any], job: dict[str, Any], name: str) -> str | None:
        image = (
            job.get("AlgorithmSpecification", {}).get("TrainingImage")
            if kind == "training"
            else job.get("AppSpecification", {}).get("ImageUri")
        )
        for rule in section.get("rules", []):
            if "fail" in rule and rule_matches(
                rule["when"],
                name=name,
                hyperparameters=job.get("HyperParameters"),
                image=image,
                environment=job.get("Environment"),
            ):
                return str(rule["fail"])
        return None

    def _require_objects(
        self, region: str, uri: str, role: str, prefix: str, credentials: dict[str, str] | None = None
    ) -> None:
        """Fail as SageMaker does when an S3 input has nothing under its prefix (or the role may
        not list it: AWS gives the same message)."""
        bucket, key = split_s3_uri(uri)
        try:
            found = (
                self.client(region, "s3", credentials)
                .list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
                .get("KeyCount", 0)
            )
        except ClientError:
            found = 0
        if not found:
            raise RunnerFailure(
                f'ClientError: {prefix}{" " if prefix else ""}No S3 objects found under S3 URL "{uri}" '
                "given in "
                f"input data source. Please ensure that the bucket exists in the selected region ({region}), "
                f'that objects exist under that S3 prefix, and that the role "{role}" has "s3:ListBucket" '
                f'permissions on bucket "{bucket}".'
            )


def _reason(exc: Exception) -> str:
    if isinstance(exc, RunnerFailure):
        return exc.reason
    if isinstance(exc, ClientError | BotoCoreError):
        return f"ClientError: {exc}"
    return f"AlgorithmError: {type(exc).__name__}: {exc}"
