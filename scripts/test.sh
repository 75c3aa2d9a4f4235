#!/usr/bin/env bash
# The whole test suite: the main virtualenv (CDK app, constructs, conventions, trigger, CLI, CI
# files, local AWS, model template) and, at the same time, the DAG tests in each MWAA Airflow
# version's virtualenv. Most of the DAG tests' time is spent waiting (on Airflow's loops and on local
# SageMaker's jobs), so running them beside the CPU-bound CDK tests, both Airflow versions at once,
# keeps `make test` under 30 minutes on 2 cores; their output is printed when both are done.
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
dag_log="$(mktemp -t mlops-dag-tests.XXXXXX)"
DAG_TESTS_PARALLEL=1 scripts/test_dags.sh >"$dag_log" 2>&1 &
dag_tests=$!
trap 'kill "$dag_tests" 2>/dev/null || true' INT TERM
.venv/bin/python -m pytest -q tests || status=$?
# The model template is a repository of its own (teams copy it): its tests run with its own config.
(cd model_template && ../.venv/bin/python -m pytest -q) || status=$?
wait "$dag_tests" || status=$?
echo "=== DAG tests (scripts/test_dags.sh, run alongside the tests above)"
cat "$dag_log"
rm -f "$dag_log"
exit "$status"
