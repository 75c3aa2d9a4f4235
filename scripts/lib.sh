# Shared shell helpers for scripts/*.sh (sourced, not run).

# Prints the path of a Python 3.12 interpreter (the version MWAA and our Lambda run).
find_python312() {
  local candidate
  for candidate in python3.12 "$HOME"/.pyenv/versions/3.12*/bin/python3.12 /usr/bin/python3.12 \
      /usr/local/bin/python3.12; do
    # Run it: a pyenv shim exists on PATH even when it cannot start that version.
    if command -v "$candidate" >/dev/null 2>&1 \
        && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
      "$candidate" -c 'import sys; print(sys.executable)'; return
    fi
  done
  echo "Python 3.12 not found (MWAA and the Lambda run 3.12): install it or put python3.12 on PATH" >&2
  return 1
}

# Makes `uv` (fast pip/venv) available.
ensure_uv() {
  export PATH="$HOME/.local/bin:$PATH"   # where an earlier `pip install --user uv` put it
  if ! command -v uv >/dev/null 2>&1; then
    python3 -m pip install --quiet --user --root-user-action=ignore uv 2>/dev/null \
      || python3 -m pip install --quiet --root-user-action=ignore uv
  fi
}
