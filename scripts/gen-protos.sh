#!/usr/bin/env bash
# Regenerate the checked-in gRPC code from protos/ (never edit the output by hand).
# With --check, fail when the checked-in code differs from a fresh generation.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
OUT=libs/common/src
gen() {
  PATH="$VENV/bin:$PATH" "$VENV/bin/python" -m grpc_tools.protoc -I protos \
    --python_out="$1" --grpc_python_out="$1" --mypy_out=quiet:"$1" --mypy_grpc_out=quiet:"$1" \
    $(cd protos && find . -name '*.proto' | sort | sed 's|^\./||')
}
if [[ "${1:-}" == "--check" ]]; then
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  gen "$tmp"
  # only the generated modules (*_pb2*): the typed clients beside them are written by hand
  stale=()
  while read -r f; do
    cmp -s "$tmp/nextapi/$f" "$OUT/nextapi/$f" || stale+=("$f")
  done < <(cd "$tmp/nextapi" && find . -name '*_pb2*' -type f | sort)
  while read -r f; do
    [[ -f "$tmp/nextapi/$f" ]] || stale+=("$f (no proto generates it any more)")
  done < <(cd "$OUT/nextapi" && find . -name '*_pb2*' -type f -not -path '*/__pycache__/*' | sort)
  if (( ${#stale[@]} )); then
    echo "generated gRPC code is stale: run scripts/gen-protos.sh and commit the result" >&2
    printf '  %s\n' "${stale[@]}" >&2
    exit 1
  fi
  echo "generated gRPC code is current"
else
  gen "$OUT"
  find "$OUT/nextapi" -type d -exec sh -c 'test -f "$1/__init__.py" || : > "$1/__init__.py"' _ {} \;
fi
