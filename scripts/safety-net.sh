#!/usr/bin/env bash
# Outer safety net for the test suite, which throws hostile programs at the sandbox:
# its own pid and network namespaces (only a loopback interface) and, where the
# machine allows, a pids/memory cgroup. Usage: scripts/safety-net.sh COMMAND...
set -euo pipefail
if [[ "${NEXT_SAFETY_NET:-}" == "inside" ]]; then
  ip link set lo up
  # Stay as PID 1 (bash reaps orphans, e.g. a jail's init killed with its nsjail) instead of exec.
  "$@"
  exit $?
fi
NAME="next-tests-$$"
for ctl in pids memory; do
  dir=""
  if [[ -d /sys/fs/cgroup/$ctl ]]; then dir=/sys/fs/cgroup/$ctl/$NAME;            # cgroup v1
  elif [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then dir=/sys/fs/cgroup/$NAME;  # cgroup v2
  fi
  if [[ -n "$dir" ]] && mkdir -p "$dir" 2>/dev/null; then
    case $ctl in
      pids) echo 4096 > "$dir/pids.max" 2>/dev/null || true ;;
      memory) { echo $((16 << 30)) > "$dir/memory.limit_in_bytes" || echo $((16 << 30)) > "$dir/memory.max"; } 2>/dev/null || true ;;
    esac
    echo $$ > "$dir/cgroup.procs" 2>/dev/null || echo "safety net: cannot join $dir" >&2
  else
    echo "safety net: no $ctl cgroup available here; relying on namespaces and the sandbox's own limits" >&2
  fi
done
if unshare --pid --net --fork --mount-proc true 2>/dev/null; then
  NEXT_SAFETY_NET=inside exec unshare --pid --net --fork --mount-proc "$0" "$@"
fi
echo "safety net: cannot create pid/net namespaces here; running without them" >&2
exec "$@"
