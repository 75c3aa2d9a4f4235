#!/usr/bin/env bash
# `make demo`: the whole MLOps pipeline on this machine (no AWS account, no Docker).
# Installs what it needs on a fresh machine (the main .venv and node_modules, the Airflow 3.3.1
# virtualenv with MWAA's constraints), then runs local mode:
#
#   scripts/demo.sh                 # train, deploy, retrain, update the endpoint in place
#   scripts/demo.sh --fail          # a training that fails: notified, nothing deployed
#   FAIL=1 scripts/demo.sh          # the same (what `make demo FAIL=1` passes)
#   scripts/demo.sh --keep-running  # leave the endpoint and Airflow up until Ctrl-C
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
scripts/airflow_venv.sh 3.3.1
args=("$@")
if [ "${FAIL:-0}" != "0" ] && [ -n "${FAIL:-}" ]; then
  args+=(--fail)
fi
# exec: Ctrl-C and SIGTERM reach local mode directly, which stops every process it started.
exec .venv/bin/python -m local_mode demo "${args[@]}"
