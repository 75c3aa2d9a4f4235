#!/usr/bin/env bash
# The whole test suite: the main virtualenv (CDK app, constructs, conventions, trigger, CLI, CI
# files, local AWS, model template), then the DAG tests in each MWAA Airflow version's virtualenv.
# Assumes `make tools` ran (make test does it).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"   # Node 24 for jsii (package.json)

status=0
.venv/bin/python -m pytest -q tests || status=$?
# The model template is a repository of its own (teams copy it): its tests run with its own config.
(cd model_template && ../.venv/bin/python -m pytest -q) || status=$?
scripts/test_dags.sh || status=$?
exit "$status"
