#!/usr/bin/env bash
# The main job: `next demo`, one real NExT self-training round, offline, on CPU (~10 minutes
# on 2 cores). It sets up .venv on first use; extra arguments go to `next demo`
# (e.g. --fresh, --run-dir DIR, --set sampling.samples_per_problem=16).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh run
exec .venv/bin/next demo --run-dir runs/demo "$@"
