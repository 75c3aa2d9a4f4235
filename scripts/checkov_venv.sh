#!/usr/bin/env bash
# checkov pins packaging<24 and an old boto3, so it gets a virtualenv of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venvs/checkov/bin/checkov ]; then
  uv venv --quiet --python .venv/bin/python .venvs/checkov
  uv pip install --quiet --python .venvs/checkov/bin/python -r requirements/checkov.txt
fi
