"""``mlops ci check-variables``: a model repository may hand the MLOps pipeline only the model and
its upstream job, never the platform's settings.

GitLab gives variables set on an upstream trigger job precedence over the downstream pipeline's
own, so a model repository could otherwise point the MLOps pipeline at another environment's
account and role, or at another package index. The pipeline takes its platform settings from the
inputs of its release branch's ``include`` (evaluated when the pipeline is created, out of the
upstream's reach) and passes them here; every job that uses AWS stops first if the environment
disagrees, naming the variable. AWS refuses another environment's role anyway (each environment's
role trusts only its own release branch); this says so plainly, and before anything is installed
from a redirected index.
"""

from __future__ import annotations

from collections.abc import Mapping

from mlops_cli.errors import EXIT_USAGE, CliError

# Variables the pipeline never sets: any value came from a trigger (or a project setting) and
# could redirect AWS calls, credentials or package installs.
REFUSED_PREFIXES = ("AWS_", "MLOPS_", "PIP_", "UV_", "LD_")
REFUSED_NAMES = frozenset({"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE"})
# Set by GitLab itself for the job (id_tokens), not by a pipeline variable.
GITLAB_SET = frozenset({"AWS_ID_TOKEN"})
ALLOWED_FROM_UPSTREAM = "MODEL_NAME, UPSTREAM_PROJECT_ID, UPSTREAM_JOB_ID, UPSTREAM_COMMIT_SHA, UPSTREAM_COMMIT_MESSAGE"


def problems(expected: Mapping[str, str], environ: Mapping[str, str]) -> list[str]:
    found = []
    for name, value in sorted(expected.items()):
        actual = environ.get(name, "")
        if actual != value:
            found.append(f"{name} is {actual!r}, but this pipeline's inputs make it {value!r}")
    for name in sorted(environ):
        if name in expected or name in GITLAB_SET:
            continue
        if name.startswith(REFUSED_PREFIXES) or name in REFUSED_NAMES:
            found.append(f"{name} is set ({environ[name][:60]!r}), but this pipeline does not use it")
    return found


def check(expected: Mapping[str, str], environ: Mapping[str, str]) -> None:
    found = problems(expected, environ)
    if found:
        raise CliError(
            "platform variables were set from outside this pipeline (a model repository's trigger job, or a "
            "project variable):\n  "
            + "\n  ".join(found)
            + f"\nA model repository may pass only {ALLOWED_FROM_UPSTREAM}; the platform settings come from the "
            "inputs of this release branch's include.",
            EXIT_USAGE,
        )
