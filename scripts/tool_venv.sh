#!/usr/bin/env bash
# Creates (or refreshes) a tool's own virtualenv, for tools whose pins clash with the main one:
#   scripts/tool_venv.sh checkov requirements/checkov.txt                        # packaging<24, old boto3
#   scripts/tool_venv.sh sagemaker-sdk model_template/requirements-experiment.txt # packaging<25, attrs<26
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_uv
name=$1 requirements=$2
venv=.venvs/$name
want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ "$(cat "$venv/.requirements.sha" 2>/dev/null)" != "$want" ]; then
  rm -rf "$venv"
  uv venv --quiet --python "$(find_python312)" "$venv"
  uv pip install --quiet --python "$venv/bin/python" -r "$requirements"
  echo "$want" > "$venv/.requirements.sha"
fi
