#!/usr/bin/env bash
# Create or update .venv with every package of the repository plus dev tools (idempotent:
# re-installs only when a requirements or pyproject file changed since the last run).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}
STAMP="$VENV/.next-bootstrap"
want=$(cat requirements-dev.txt scripts/install.sh libs/*/pyproject.toml services/*/pyproject.toml 2>/dev/null | sha256sum | cut -d' ' -f1)
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
  exit 0
fi
[[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
PIP="$VENV/bin/python -m pip" scripts/install.sh dev
# buf (proto lint and format checks) comes from npm; without npm the check is skipped with a warning.
if command -v npm >/dev/null 2>&1; then
  npm install --silent --no-audit --no-fund --prefix .tools @bufbuild/buf@1.75.0 >/dev/null
fi
echo "$want" > "$STAMP"
