#!/usr/bin/env bash
# The full check: set-up, generated-code freshness, lint, types, and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
VENV=.venv scripts/gen-protos.sh --check
if [[ -x .tools/node_modules/.bin/buf ]]; then
  .tools/node_modules/.bin/buf lint
  .tools/node_modules/.bin/buf format --diff --exit-code protos
else
  echo "warning: buf not installed (needs npm): proto lint skipped" >&2
fi
.venv/bin/ruff check .
.venv/bin/mypy
set +e
scripts/safety-net.sh .venv/bin/python -m pytest "$@"
rc=$?
set -e
if [[ $rc -eq 5 ]]; then
  echo "pytest collected no tests: treating as a failure" >&2
  exit 1
fi
exit $rc
