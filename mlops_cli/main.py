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

from mlops_cli import ci_guard, dag_runs, gitlab_artifacts, images, oci, versioning
from mlops_cli.dotenv import write_dotenv
from mlops_cli.errors import EXIT_OK, EXIT_USAGE, CliError
from mlops_core.names import InvalidName, ci_release_branch
from mlops_core.versions import Bump


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
    bump = version.add_parser("bump", help="the bump the merged change asks for; writes a dotenv")
    bump.add_argument(
        "--commit-message",
        default=_env("UPSTREAM_COMMIT_MESSAGE", _env("CI_COMMIT_MESSAGE")),
        help="the merged commit's message: a merge commit's body carries the merge request's title "
        "($UPSTREAM_COMMIT_MESSAGE)",
    )
    bump.add_argument(
        "--bump",
        choices=["auto", "major", "minor", "patch"],
        default=_env("VERSION_BUMP_OVERRIDE", "auto"),
        help="auto: from the conventional commits ($VERSION_BUMP_OVERRIDE)",
    )
    bump.add_argument("--output", type=Path, default=Path("bump.env"), help="dotenv file to write")
    nxt = version.add_parser("next", help="the version a release would get now (a preview); writes a dotenv")
    _add_model_args(nxt)
    nxt.add_argument("--bump", choices=["auto", "major", "minor", "patch"], default="auto")
    nxt.add_argument("--commit-message", default=_env("UPSTREAM_COMMIT_MESSAGE", _env("CI_COMMIT_MESSAGE")))
    nxt.add_argument("--output", type=Path, default=Path("version.env"), help="dotenv file to write")

    image = commands.add_parser("image", help="model images in ECR").add_subparsers(dest="image_command", required=True)
    release = image.add_parser(
        "release",
        help="push the built image under the next free release version (safe for concurrent pipelines and re-runs)",
    )
    _add_model_args(release)
    release.add_argument("--image", type=Path, default=Path("image.tar"), help="OCI image archive the build wrote")
    release.add_argument(
        "--bump", choices=["major", "minor", "patch"], default=_env("VERSION_BUMP"), help="($VERSION_BUMP)"
    )
    release.add_argument("--output", type=Path, default=Path("release.env"), help="dotenv file to write")

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
        help="the pipeline runs on the project's release branch for its environment, the only ref its AWS role trusts",
    )
    _add_model_args(branch)
    branch.add_argument("--environment", default=_env("MLOPS_ENVIRONMENT"), help="($MLOPS_ENVIRONMENT)")
    branch.add_argument("--branch", default=_env("CI_COMMIT_BRANCH"), help="($CI_COMMIT_BRANCH)")
    guard = ci.add_parser(
        "check-variables",
        help="refuse platform variables a model repository's trigger job set or changed",
    )
    guard.add_argument(
        "--expect",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a platform variable and the value the pipeline's inputs give it (repeat)",
    )

    lineage = commands.add_parser(
        "lineage", help="what data and code produced an endpoint or model version (SageMaker lineage)"
    )
    lineage.add_argument("target", help="an endpoint name, or a model version: project/model@1.4.2+r3")

    stat = commands.add_parser("status", help="state of a DAG run")
    _add_model_args(stat)
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
    if args.version_command == "bump":
        chosen = versioning.choose_bump(args.bump, args.commit_message)
        first_line = (args.commit_message or "").strip().splitlines()[:1] or ["(no commit message)"]
        print(f"{chosen.value} release for: {first_line[0]}")
        write_dotenv(args.output, {"VERSION_BUMP": chosen.value})
        print(f"wrote {args.output}")
        return EXIT_OK
    project = _required(args.project, "--project", "MODEL_PROJECT")
    model = _required(args.model, "--model", "MODEL_NAME")
    result = versioning.next_image_version(project, model, versioning.choose_bump(args.bump, args.commit_message))
    print(f"{result.repository}: {result.previous or '(none)'} -> {result.version} ({result.bump})")
    write_dotenv(args.output, result.dotenv())
    print(f"wrote {args.output}")
    return EXIT_OK


def _image(args: argparse.Namespace) -> int:
    project = _required(args.project, "--project", "MODEL_PROJECT")
    model = _required(args.model, "--model", "MODEL_NAME")
    bump = Bump(_required(args.bump, "--bump", "VERSION_BUMP"))
    result = images.release(project, model, oci.read_archive(args.image), bump)
    if result.created:
        print(
            f"{result.repository}: {result.previous or '(none)'} -> {result.version} ({result.bump}), {result.digest}"
        )
    else:
        print(f"{result.repository}:{result.version} is this image already ({result.digest}): nothing to do")
    write_dotenv(args.output, result.dotenv())
    print(f"wrote {args.output}")
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
    if args.ci_command == "check-variables":
        expected = {}
        for item in args.expect:
            name, sep, value = item.partition("=")
            if not sep or not name:
                raise CliError(f"--expect {item!r} is not NAME=VALUE", EXIT_USAGE)
            expected[name] = value
        ci_guard.check(expected, os.environ)
        print(f"platform variables as the pipeline defines them ({len(expected)} checked)")
        return EXIT_OK
    project = _required(args.project, "--project", "MODEL_PROJECT")
    environment = _required(args.environment, "--environment", "MLOPS_ENVIRONMENT")
    try:
        expected_branch = ci_release_branch(environment, project)
    except InvalidName as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    if args.branch != expected_branch:
        raise CliError(
            f"project {project!r} releases to {environment!r} from branch {expected_branch!r} of the MLOps project "
            f"(its AWS role there trusts only that protected branch), but this pipeline runs on "
            f"{args.branch or '(no branch)'!r}: trigger branch {expected_branch!r}",
            EXIT_USAGE,
        )
    print(f"project {project} on its release branch {expected_branch} for {environment}")
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


def _finish(args: argparse.Namespace, url: str, dag: str, result: dict[str, Any]) -> int:
    if not args.wait:
        return EXIT_OK
    final = dag_runs.wait_for(
        url,
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
    url = dag_runs.function_url(function, conf["project"])
    result = dag_runs.trigger(url, dag=args.dag, pipeline_id=pipeline_id, job_id=job_id, conf=conf)
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
    return _finish(args, url, args.dag, result)


def _status(args: argparse.Namespace) -> int:
    dag = _required(args.dag, "--dag", "DAG_NAME")
    run_id = _required(args.run_id, "--run-id", "DAG_RUN_ID")
    project = _required(args.project, "--project", "MODEL_PROJECT")
    function = dag_runs.trigger_function_name(args.environment, args.function_name)
    url = dag_runs.function_url(function, project)
    result = dag_runs.status(url, dag=dag, run_id=run_id)
    _print_run(result, "status of")
    if args.wait:
        return _finish(args, url, dag, result)
    return dag_runs.TERMINAL_STATES.get(result.get("state"), EXIT_OK)


def _lineage(args: argparse.Namespace) -> int:
    from mlops_cli.lineage import lineage_report

    print("\n".join(lineage_report(args.target)))
    return EXIT_OK


HANDLERS = {
    "version": _version,
    "image": _image,
    "artifacts": _artifacts,
    "trigger": _trigger,
    "ci": _ci,
    "status": _status,
    "lineage": _lineage,
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
