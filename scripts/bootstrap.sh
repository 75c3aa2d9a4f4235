#!/usr/bin/env bash
# Installs what the main job and the tests need on a fresh machine: a Python 3.12 virtualenv
# (.venv) with the project and its dev requirements, and the pinned CDK CLI (node_modules).
# Idempotent and quick when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_uv

# Node 24 (package.json) runs the CDK CLI and jsii; Node 20 is end-of-life for jsii.
if [ ! -x node_modules/.bin/cdk ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
export PATH="$PWD/node_modules/.bin:$PATH"

if [ ! -x .venv/bin/python ]; then
  uv venv --quiet --python "$(find_python312)" .venv
fi
stamp=.venv/.requirements.sha
want=$(cat requirements*.txt requirements/*.txt pyproject.toml model_template/requirements*.txt 2>/dev/null | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  uv pip install --quiet --python .venv/bin/python -r requirements-dev.txt -e .
  # The trigger Lambda's asset bundles Linux/arm64 wheels at synth; fetch them once now.
  .venv/bin/python -c "from mlops_constructs.dag_trigger import prefetch_dependencies; prefetch_dependencies()"
  echo "$want" > "$stamp"
fi

