#!/usr/bin/env bash
# The main job. For now: trace the paper's Figure 2 example through the sandboxed tracer.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/next-tracer trace examples/separate_odd_and_even.py \
  --test 'assert separate_odd_and_even([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]) == ([1, 3, 5, 7, 9], [2, 4, 6, 8, 10])' "$@"
