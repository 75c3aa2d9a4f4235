#!/usr/bin/env bash
# Creates the Airflow virtualenvs the DAG tests run in: .venvs/airflow-<version> for each MWAA
# Airflow version (default: 3.3.1 and 2.11.2), on Python 3.12 as on MWAA, installed with the MWAA
# image's constraints (dag_assets/constraints/) so tests see the provider, boto3 and SQLAlchemy
# versions the managed service runs. Idempotent: a venv is rebuilt only when its inputs change.
#
#   scripts/airflow_venv.sh            # both versions
#   scripts/airflow_venv.sh 3.3.1      # one version
set -euo pipefail
cd "$(dirname "$0")/.."

VERSIONS=("$@")
[ ${#VERSIONS[@]} -gt 0 ] || VERSIONS=(3.3.1 2.11.2)

source scripts/lib.sh
ensure_uv

PYTHON=$(find_python312)
for version in "${VERSIONS[@]}"; do
  constraints=dag_assets/constraints/constraints-$version.txt
  [ -f "$constraints" ] || { echo "no constraints file $constraints" >&2; exit 1; }
  venv=.venvs/airflow-$version
  stamp=$venv/.inputs.sha
  want=$( (echo "$version"; cat "$constraints" dag_assets/requirements.txt requirements/airflow-dags.txt) \
    | sha256sum | cut -d' ' -f1)
  if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    echo "$venv is up to date"; continue
  fi
  echo "creating $venv (apache-airflow==$version, constraints $constraints)"
  rm -rf "$venv"
  uv venv --quiet --python "$PYTHON" "$venv"
  # Same body as the MWAA requirements.txt, plus Airflow itself (preinstalled on MWAA) and pytest.
  uv pip install --quiet --python "$venv/bin/python" -c "$constraints" \
    "apache-airflow==$version" -r dag_assets/requirements.txt -r requirements/airflow-dags.txt
  echo "$want" > "$stamp"
done
