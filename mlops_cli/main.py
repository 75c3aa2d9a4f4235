"""Entry point of the ``mlops`` console script (argparse; the logic lives in the sibling modules).

Every option that a GitLab job knows from its environment defaults to that variable, so CI job
scripts stay one line. Exit codes: 0 ok, 1 failed, 2 invalid usage/request, 3 wait timed out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlops_cli import dag_runs, gitlab_artifacts, images, versioning
from mlops_cli.dotenv import write_dotenv
from mlops_cli.errors import EXIT_OK, EXIT_USAGE, CliError
from mlops_core.names import ci_release_branch


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name) or default


def _required(value: str | None, option: str, variable: str) -> str:
    if not value:
        raise CliError(f"{option} is required (or set {variable})", EXIT_USAGE)
    return value


def _ci_id(value: str | None, option: str, variable: str) -> int:
    text = _required(value, option, variable)
    if not text.isdigit() or int(text) <= 0:
        raise CliError(f"{option}={text!r} must be a positive integer", EXIT_USAGE)
    return int(text)


def _key_value(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    try:
        value = json.loads(raw)  # numbers and booleans keep their type
        if isinstance(value, dict | list) or value is None:
            value = raw
    except ValueError:
        value = raw
    return key, value


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project", default=_env("MODEL_PROJECT"), help="platform project ($MODEL_PROJECT)")
    parser.add_argument("--model", default=_env("MODEL_NAME"), help="model name ($MODEL_NAME)")


def _add_trigger_target_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--environment", default=_env("MLOPS_ENVIRONMENT"), help="platform environment ($MLOPS_ENVIRONMENT)"
    )
    parser.add_argument(
        "--function-name",
        default=_env("MLOPS_TRIGGER_FUNCTION"),
        help="trigger Lambda name ($MLOPS_TRIGGER_FUNCTION; default from --environment)",
    )


def _add_wait_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wait", action="store_true", help="poll until the run succeeds or fails")
    parser.add_argument("--timeout", type=float, default=6 * 3600, help="seconds to wait (default 6 h)")
    parser.add_argument("--interval", type=float, default=30, help="seconds between polls")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlops",
        description="MLOps platform CI tool. Exit codes: 0 ok, 1 failed, 2 invalid usage or request, "
        "3 --wait timed out.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    version = commands.add_parser("version", help="semantic versions of model images").add_subparsers(
        dest="version_command", required=True
    )
    nxt = version.add_parser("next", help="next version from the ECR tags and the commit; writes a dotenv")
    _add_model_args(nxt)
    nxt.add_argument(
        "--bump",
        choices=["auto", "major", "minor", "patch"],
        default=_env("VERSION_BUMP", "auto"),
        help="auto: from the conventional commit message ($VERSION_BUMP)",
    )
    nxt.add_argument(
        "--commit-message",
        default=_env("CI_COMMIT_MESSAGE"),
        help="commit message for --bump auto ($CI_COMMIT_MESSAGE)",
    )
    nxt.add_argument("--output", type=Path, default=Path("version.env"), help="dotenv file to write")
    latest = version.add_parser("latest", help="highest released version (for retraining); writes a dotenv")
    _add_model_args(latest)
    latest.add_argument("--output", type=Path, default=Path("version.env"))

    image = commands.add_parser("image", help="model images in ECR").add_subparsers(dest="image_command", required=True)
    promote = image.add_parser("promote", help="tag a pushed CI image with its release version")
    _add_model_args(promote)
    promote.add_argument("--from-tag", default=_env("CI_IMAGE_TAG"), help="tag the package job pushed ($CI_IMAGE_TAG)")
    promote.add_argument("--to-tag", default=_env("MODEL_VERSION"), help="release version ($MODEL_VERSION)")

    artifacts = commands.add_parser("artifacts", help="GitLab job artifacts").add_subparsers(
        dest="artifacts_command", required=True
    )
    fetch = artifacts.add_parser("fetch", help="download and unpack an upstream job's artifacts")
    fetch.add_argument("--project-id", default=_env("UPSTREAM_PROJECT_ID"), help="($UPSTREAM_PROJECT_ID)")
    fetch.add_argument("--job-id", default=_env("UPSTREAM_JOB_ID"), help="($UPSTREAM_JOB_ID)")
    fetch.add_argument("--api-url", default=_env("CI_API_V4_URL"), help="GitLab API v4 URL ($CI_API_V4_URL)")
    fetch.add_argument("--output", type=Path, default=Path("upstream"), help="directory to unpack into")

    trigger = commands.add_parser("trigger", help="start a DAG run through the trigger Lambda")
    which = trigger.add_subparsers(dest="dag", required=True)
    training = which.add_parser("training", help="Training & Evaluation DAG")
    deployment = which.add_parser("deployment", help="Deployment DAG")
    for sub in (training, deployment):
        _add_model_args(sub)
        _add_trigger_target_args(sub)
        sub.add_argument("--pipeline-id", default=_env("CI_PIPELINE_ID"), help="($CI_PIPELINE_ID)")
        sub.add_argument("--job-id", default=_env("CI_JOB_ID"), help="($CI_JOB_ID)")
        sub.add_argument("--output", type=Path, default=Path("trigger.env"), help="dotenv with DAG_RUN_ID/URL")
        _add_wait_args(sub)
    training.add_argument("--image-tag", default=_env("MODEL_VERSION"), help="image version ($MODEL_VERSION)")
    training.add_argument("--source-commit", default=_env("UPSTREAM_COMMIT_SHA", _env("CI_COMMIT_SHA")))
    training.add_argument("--data-path", help="S3 prefix of the training data (default: the model's)")
    training.add_argument("--retraining", action="store_true", help="mark the run as a retraining")
    training.add_argument("--hyperparameter", type=_key_value, action="append", default=[], metavar="KEY=VALUE")
    target = deployment.add_mutually_exclusive_group()
    target.add_argument(
        "--model-version",
        default=_env("DEPLOY_MODEL_VERSION"),
        help="registered version, e.g. 1.4.2+r0 ($DEPLOY_MODEL_VERSION)",
    )
    target.add_argument("--model-package-arn")

    ci = commands.add_parser("ci", help="checks of the MLOps pipeline itself").add_subparsers(
        dest="ci_command", required=True
    )
    branch = ci.add_parser(
        "check-branch",
        help="the pipeline runs on the project's release branch, the only ref its AWS role trusts",
    )
    _add_model_args(branch)
    branch.add_argument("--branch", default=_env("CI_COMMIT_BRANCH"), help="($CI_COMMIT_BRANCH)")

    stat = commands.add_parser("status", help="state of a DAG run")
    stat.add_argument("--dag", choices=sorted(dag_runs.DAGS), default=_env("DAG_NAME"), help="($DAG_NAME)")
    stat.add_argument("--run-id", default=_env("DAG_RUN_ID"), help="($DAG_RUN_ID)")
    _add_trigger_target_args(stat)
    _add_wait_args(stat)
    return parser


def _print_run(result: dict[str, Any], verb: str) -> None:
    print(f"{verb} DAG run {result['dag_run_id']} of {result['dag_id']}: {result.get('state')}")
    if result.get("url"):
        print(f"  {result['url']}")


def _version(args: argparse.Namespace) -> int:
    project = _required(args.project, "--project", "MODEL_PROJECT")
    model = _required(args.model, "--model", "MODEL_NAME")
    if args.version_command == "next":
        bump = versioning.choose_bump(args.bump, args.commit_message)
        result = versioning.next_image_version(project, model, bump)
        print(f"{result.repository}: {result.previous or '(none)'} -> {result.version} ({result.bump})")
    else:
        result = versioning.latest_image_version(project, model)
        print(f"{result.repository}: latest released version {result.version}")
    write_dotenv(args.output, result.dotenv())
    print(f"wrote {args.output}")
    return EXIT_OK


def _image(args: argparse.Namespace) -> int:
    project = _required(args.project, "--project", "MODEL_PROJECT")
    model = _required(args.model, "--model", "MODEL_NAME")
    from_tag = _required(args.from_tag, "--from-tag", "CI_IMAGE_TAG")
    to_tag = _required(args.to_tag, "--to-tag", "MODEL_VERSION")
    digest = images.promote(project, model, from_tag, to_tag)
    print(f"{project}/{model}:{to_tag} -> {digest} (from {from_tag})")
    return EXIT_OK


def _artifacts(args: argparse.Namespace) -> int:
    files = gitlab_artifacts.fetch_artifacts(
        api_url=_required(args.api_url, "--api-url", "CI_API_V4_URL"),
        project_id=_required(args.project_id, "--project-id", "UPSTREAM_PROJECT_ID"),
        job_id=_required(args.job_id, "--job-id", "UPSTREAM_JOB_ID"),
        destination=args.output,
        job_token=_env("CI_JOB_TOKEN"),
        private_token=_env("GITLAB_TOKEN"),
    )
    print(f"unpacked {len(files)} files from job {args.job_id} into {args.output}")
    return EXIT_OK


def _ci(args: argparse.Namespace) -> int:
    project = _required(args.project, "--project", "MODEL_PROJECT")
    expected = ci_release_branch(project)
    if args.branch != expected:
        raise CliError(
            f"project {project!r} releases from branch {expected!r} of the MLOps project (its AWS role trusts "
            f"only that protected branch), but this pipeline runs on {args.branch or '(no branch)'!r}: "
            f"trigger branch {expected!r}",
            EXIT_USAGE,
        )
    print(f"project {project} on its release branch {expected}")
    return EXIT_OK


def _conf(args: argparse.Namespace) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "project": _required(args.project, "--project", "MODEL_PROJECT"),
        "model": _required(args.model, "--model", "MODEL_NAME"),
    }
    if args.dag == "training":
        conf["image_tag"] = _required(args.image_tag, "--image-tag", "MODEL_VERSION")
        conf["retraining"] = args.retraining
        if args.source_commit:
            conf["source_commit"] = args.source_commit
        if args.data_path:
            conf["data_path"] = args.data_path
        if args.hyperparameter:
            conf["hyperparameters"] = dict(args.hyperparameter)
    elif args.model_package_arn:
        conf["model_package_arn"] = args.model_package_arn
    else:
        conf["model_version"] = _required(args.model_version, "--model-version", "DEPLOY_MODEL_VERSION")
    return conf


def _finish(args: argparse.Namespace, function: str, dag: str, result: dict[str, Any]) -> int:
    if not args.wait:
        return EXIT_OK
    final = dag_runs.wait_for(
        function,
        dag=dag,
        run_id=result["dag_run_id"],
        timeout=args.timeout,
        interval=args.interval,
        report=lambda r: print(f"  state: {r.get('state')}", flush=True),
    )
    return dag_runs.TERMINAL_STATES[final["state"]]


def _trigger(args: argparse.Namespace) -> int:
    conf = _conf(args)
    pipeline_id = _ci_id(args.pipeline_id, "--pipeline-id", "CI_PIPELINE_ID")
    job_id = _ci_id(args.job_id, "--job-id", "CI_JOB_ID")
    function = dag_runs.trigger_function_name(args.environment, args.function_name)
    result = dag_runs.trigger(function, dag=args.dag, pipeline_id=pipeline_id, job_id=job_id, conf=conf)
    _print_run(result, "started" if result.get("created") else "already started:")
    write_dotenv(
        args.output,
        {
            "DAG_NAME": args.dag,
            "DAG_ID": result["dag_id"],
            "DAG_RUN_ID": result["dag_run_id"],
            "DAG_RUN_URL": result.get("url") or "",
        },
    )
    return _finish(args, function, args.dag, result)


def _status(args: argparse.Namespace) -> int:
    dag = _required(args.dag, "--dag", "DAG_NAME")
    run_id = _required(args.run_id, "--run-id", "DAG_RUN_ID")
    function = dag_runs.trigger_function_name(args.environment, args.function_name)
    result = dag_runs.status(function, dag=dag, run_id=run_id)
    _print_run(result, "status of")
    if args.wait:
        return _finish(args, function, dag, result)
    return dag_runs.TERMINAL_STATES.get(result.get("state"), EXIT_OK)


HANDLERS = {
    "version": _version,
    "image": _image,
    "artifacts": _artifacts,
    "trigger": _trigger,
    "ci": _ci,
    "status": _status,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return HANDLERS[args.command](args)
    except CliError as exc:
        print(f"mlops: error: {exc.message}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
