#!/usr/bin/env bash
# The whole test suite: the main virtualenv (CDK app, constructs, conventions, trigger, CLI, CI
# files, local AWS, model template), then the DAG tests in each MWAA Airflow version's virtualenv.
# Assumes `make tools` ran (make test does it).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"   # Node 24 for jsii (package.json)

# The pipeline tests run GitLab CI jobs with gitlab-ci-local (package.json), which copies files
# with rsync: a Debian package, installed here if missing (a fresh machine or CI job runs as root).
if ! command -v rsync >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq rsync >/dev/null
  else
    echo "rsync is missing (the pipeline tests need it): sudo apt-get install rsync" >&2
  fi
fi

status=0
.venv/bin/python -m pytest -q tests || status=$?
# The model template is a repository of its own (teams copy it): its tests run with its own config.
(cd model_template && ../.venv/bin/python -m pytest -q) || status=$?
scripts/test_dags.sh || status=$?
exit "$status"
