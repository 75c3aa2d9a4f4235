#!/usr/bin/env bash
# Runs the DAG tests (tests/dags) in each MWAA Airflow version's virtualenv: unit tests, the DagBag
# tests and the integration tests that run every DAG with dag.test() against local_aws.
#
#   scripts/test_dags.sh                       # 3.3.1 and 2.11.2, everything
#   AIRFLOW_VERSIONS="2.11.2" scripts/test_dags.sh -m "not integration"
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

status=0
for version in "${versions[@]}"; do
  echo "=== DAG tests on Airflow $version"
  # The repository's pytest addopts ignore tests/dags (they need Airflow): replace them here. Only
  # tests/dags/conftest.py applies: the root conftest serves the CDK tests in the main venv.
  PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" ".venvs/airflow-$version/bin/python" -m pytest tests/dags \
    -o addopts="-ra --strict-markers" --confcutdir=tests/dags -p no:cacheprovider -q "$@" || status=$?
done
exit "$status"
