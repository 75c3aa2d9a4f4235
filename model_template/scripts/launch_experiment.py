"""Launch an experiment training job with the team's image and data, wait, and print its metrics.

For data scientists' late-stage development: the same image and entry point the platform's pipeline
runs, but started by hand with your own hyperparameters and data, outside the release process.
Needs the ``sagemaker`` SDK (``pip install -r requirements-experiment.txt``) and AWS credentials for
a role that may start training jobs.

    python scripts/launch_experiment.py \\
        --image-uri 123456789012.dkr.ecr.eu-west-1.amazonaws.com/proj/model:1.4.2 \\
        --role-arn arn:aws:iam::123456789012:role/proj-sagemaker-execution \\
        --train s3://data-bucket/proj/model/training/train/ \\
        --output s3://artifact-bucket/proj/model/experiments/ \\
        -p n_estimators=300 -p learning_rate=0.05

AWS endpoints come from the usual boto3 settings (``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_SAGEMAKER``),
so the same command runs against a local AWS emulator.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mlops_runtime.contract import metric_definitions


def _hyperparameter(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r}: use NAME=VALUE")
    return name, value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--image-uri", required=True, help="the team's image in ECR, with its tag")
    parser.add_argument("--role-arn", required=True, help="SageMaker execution role")
    parser.add_argument("--train", required=True, help="S3 prefix of the train channel")
    parser.add_argument("--validation", help="S3 prefix of an optional validation channel")
    parser.add_argument("--output", required=True, help="S3 prefix for the model artifact")
    parser.add_argument("--instance-type", default="ml.m5.large")
    parser.add_argument("--max-runtime", type=int, default=3600, help="seconds")
    parser.add_argument("--job-prefix", default="experiment", help="training job name prefix")
    parser.add_argument("--problem-type", default="classification", choices=["classification", "regression"])
    parser.add_argument(
        "-p", "--hyperparameter", type=_hyperparameter, action="append", default=[], metavar="NAME=VALUE"
    )
    parser.add_argument("--region", help="AWS region (default: the boto3 configuration)")
    parser.add_argument("--no-wait", action="store_true", help="start the job and return")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import boto3
    import sagemaker
    import sagemaker.exceptions
    from sagemaker.estimator import Estimator
    from sagemaker.inputs import TrainingInput

    session = sagemaker.Session(
        boto_session=boto3.Session(region_name=args.region),
        # The SDK reports usage to an AWS bucket unless told not to; experiments stay private.
        sagemaker_config={
            "SchemaVersion": "1.0",
            "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
        },
    )
    estimator = Estimator(
        image_uri=args.image_uri,
        role=args.role_arn,
        instance_count=1,
        instance_type=args.instance_type,
        output_path=args.output,
        base_job_name=args.job_prefix,
        max_run=args.max_runtime,
        hyperparameters=dict(args.hyperparameter),
        # The image prints "metric validation:f1=0.91"; these regexes turn that into job metrics.
        metric_definitions=metric_definitions(args.problem_type),
        sagemaker_session=session,
    )
    channels = {"train": TrainingInput(args.train, content_type="text/csv")}
    if args.validation:
        channels["validation"] = TrainingInput(args.validation, content_type="text/csv")
    try:
        estimator.fit(channels, wait=not args.no_wait, logs="None")
    except sagemaker.exceptions.UnexpectedStatusException as exc:
        print(f"training job failed: {exc}", file=sys.stderr)  # carries the job's FailureReason
        return 1
    job_name = estimator.latest_training_job.name
    print(f"training job: {job_name}")
    if args.no_wait:
        return 0
    job = session.sagemaker_client.describe_training_job(TrainingJobName=job_name)
    print(f"status: {job['TrainingJobStatus']}")
    if job["TrainingJobStatus"] != "Completed":
        print(f"failure reason: {job.get('FailureReason', 'not given')}", file=sys.stderr)
        return 1
    print(f"model artifact: {job['ModelArtifacts']['S3ModelArtifacts']}")
    metrics = job.get("FinalMetricDataList", [])
    if not metrics:
        print("no metrics reported (check the job log for 'metric ...' lines)")
    for metric in sorted(metrics, key=lambda m: m["MetricName"]):
        print(f"metric {metric['MetricName']} = {metric['Value']:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
