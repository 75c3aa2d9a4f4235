#!/usr/bin/env bash
# Runs the DAG tests (tests/dags) in each MWAA Airflow version's virtualenv: unit tests, the DagBag
# tests and the integration tests that run every DAG with dag.test() against local_aws.
#
#   scripts/test_dags.sh                       # 3.3.1 and 2.11.2, everything
#   AIRFLOW_VERSIONS="2.11.2" scripts/test_dags.sh -m "not integration"
#   DAG_TESTS_PARALLEL=1 scripts/test_dags.sh  # both versions at the same time (make test does)
#
# Extra arguments go to pytest. Integration tests start local_aws with the main virtualenv's
# Python (.venv, from scripts/bootstrap.sh), which has moto.
set -euo pipefail
cd "$(dirname "$0")/.."

read -r -a versions <<< "${AIRFLOW_VERSIONS:-3.3.1 2.11.2}"
scripts/airflow_venv.sh "${versions[@]}"
if [ ! -x .venv/bin/python ]; then
  echo "warning: .venv missing (scripts/bootstrap.sh): integration tests need it for local_aws" >&2
fi

run_version() {
  # The repository's pytest addopts ignore tests/dags (they need Airflow): replace them here. Only
  # tests/dags/conftest.py applies: the root conftest serves the CDK tests in the main venv.
  PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" ".venvs/airflow-$1/bin/python" -m pytest tests/dags \
    -o addopts="-ra --strict-markers" --confcutdir=tests/dags -p no:cacheprovider -q "${@:2}"
}

status=0
if [ "${DAG_TESTS_PARALLEL:-0}" = 1 ]; then
  # Each version in its own process at the same time (each has its own AIRFLOW_HOME, local AWS and
  # ports): the tests mostly wait on Airflow's loops and local SageMaker's jobs. Output per version,
  # printed when both are done.
  declare -A pids logs
  for version in "${versions[@]}"; do
    logs[$version]="$(mktemp -t "mlops-dag-tests-$version.XXXXXX")"
    run_version "$version" "$@" >"${logs[$version]}" 2>&1 &
    pids[$version]=$!
  done
  for version in "${versions[@]}"; do
    wait "${pids[$version]}" || status=$?
    echo "=== DAG tests on Airflow $version"
    cat "${logs[$version]}"
    rm -f "${logs[$version]}"
  done
else
  for version in "${versions[@]}"; do
    echo "=== DAG tests on Airflow $version"
    run_version "$version" "$@" || status=$?
  done
fi
exit "$status"
