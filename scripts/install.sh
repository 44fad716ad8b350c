#!/usr/bin/env bash
# Install one deployable (or everything, for development) into the Python environment of $PIP.
# The container images run exactly this script, and so does scripts/bootstrap.sh (target dev),
# so CI exercises the install steps of every image even where no container engine exists.
#   scripts/install.sh tracer|sampler|sampler-local|trainer|controller|dev
set -euo pipefail
cd "$(dirname "$0")/.."
PIP=${PIP:-pip}
target=${1:?usage: scripts/install.sh tracer|sampler|sampler-local|trainer|controller|dev}
case "$target" in
  tracer)        pkgs=(libs/common services/tracer) ;;
  sampler)       pkgs=(libs/common services/sampler) ;;
  sampler-local) pkgs=(libs/common 'services/sampler[local]') ;;
  # torch==2.13.0 from PyPI is the CUDA build on Linux x86-64; this machine's CPU wheel has the same pin.
  trainer)       pkgs=(libs/common services/trainer) ;;
  controller)    pkgs=(libs/common services/tracer libs/tasks services/controller) ;;
  dev)
    $PIP install -q -r requirements-dev.txt -e libs/common -e services/tracer -e libs/tasks -e services/trainer \
      -e 'services/sampler[local]' -e 'services/controller[embedded]'
    exit 0 ;;
  *) echo "unknown target $target" >&2; exit 2 ;;
esac
$PIP install -q --no-cache-dir ${INSTALL_FLAGS:-} "${pkgs[@]}"
