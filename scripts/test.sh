#!/usr/bin/env bash
# The full check: set-up, generated-code freshness, lint, types, and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh dev
# The Node example client's packages (tests/examples/test_clients.py): installed here, because
# the suite runs inside the safety net, which has no network. Again when the lock file changed.
node_client=examples/clients/node
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 \
  && [[ ! $node_client/node_modules/.package-lock.json -nt $node_client/package-lock.json ]]; then
  (cd $node_client && npm ci --silent --no-audit --no-fund) \
    || echo "warning: npm ci failed in $node_client: the Node client test will fail" >&2
fi
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
scripts/safety-net.sh .venv/bin/python -m pytest --durations=15 "$@"
rc=$?
set -e
if [[ $rc -eq 5 ]]; then
  echo "pytest collected no tests: treating as a failure" >&2
  exit 1
fi
exit $rc
