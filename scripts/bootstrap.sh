#!/usr/bin/env bash
# Installs what the main job and the tests need on a fresh machine: a Python 3.12 virtualenv
# (.venv, Python as on MWAA and Lambda) with the project and its dev requirements, and the pinned
# CDK CLI (node_modules). Idempotent and quick when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {
  for candidate in python3.12 "$HOME"/.pyenv/versions/3.12*/bin/python3.12 python3; do
    if command -v "$candidate" >/dev/null 2>&1 || [ -x "$candidate" ]; then
      echo "$candidate"; return
    fi
  done
  echo "no python3 found" >&2; exit 1
}

if ! command -v uv >/dev/null 2>&1; then
  python3 -m pip install --quiet --user uv || python3 -m pip install --quiet uv
  export PATH="$HOME/.local/bin:$PATH"
fi

if [ ! -x .venv/bin/python ]; then
  uv venv --quiet --python "$(find_python)" .venv
fi
stamp=.venv/.requirements.sha
want=$(cat requirements*.txt requirements/*.txt model_template/requirements*.txt pyproject.toml 2>/dev/null | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  uv pip install --quiet --python .venv/bin/python -r requirements-dev.txt -e .
  echo "$want" > "$stamp"
fi

if [ ! -x node_modules/.bin/cdk ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
