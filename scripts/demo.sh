#!/usr/bin/env bash
# `make demo`: the whole MLOps pipeline on this machine (no AWS account, no Docker).
# Installs what it needs on a fresh machine (the main .venv and node_modules, the Airflow 3.3.1
# virtualenv with MWAA's constraints), then runs local mode:
#
#   scripts/demo.sh                          # every model: train, deploy, retrain, update in place
#   scripts/demo.sh --model fraud/scorer     # one model (MODEL=fraud/scorer, as make passes it)
#   scripts/demo.sh --model-repo ~/src/repo  # a team's own model repository (MODEL_REPO=...)
#   scripts/demo.sh --fail                   # a training that fails: notified, nothing deployed (FAIL=1)
#   scripts/demo.sh --keep-running           # leave the endpoints and Airflow up until Ctrl-C
#
# MODEL, MODEL_REPO and PROJECT_FILE take comma-separated lists (python -m local_mode demo --help).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
scripts/airflow_venv.sh 3.3.1
args=("$@")
if [ "${FAIL:-0}" != "0" ] && [ -n "${FAIL:-}" ]; then
  args+=(--fail)
fi
if [ "${DRIFT:-0}" != "0" ] && [ -n "${DRIFT:-}" ]; then
  args+=(--drift)
fi
split() {  # split --option "a,b": --option a --option b
  local items item
  IFS=, read -ra items <<< "$2"
  for item in "${items[@]}"; do
    if [ -n "$item" ]; then args+=("$1" "$item"); fi
  done
}
split --model "${MODEL:-}"
split --model-repo "${MODEL_REPO:-}"
split --project-file "${PROJECT_FILE:-}"
# exec: Ctrl-C and SIGTERM reach local mode directly, which stops every process it started.
exec .venv/bin/python -m local_mode demo "${args[@]}"
