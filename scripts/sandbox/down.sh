#!/usr/bin/env bash
# Removes VM sandbox NAME (default lago-sb): destroys/undefines every domain
# and network libvirtd knows, stops libvirtd, virtlogd and everything else
# still running in network namespace NAME (dnsmasq, QEMU), deletes the
# namespace and the sandbox's state (/run/lago-sandbox/NAME, with its logs).
# Idempotent; succeeds when the sandbox is already down.
#
# Usage: scripts/sandbox/down.sh [NAME]
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
. "$HERE/common.sh" "${1:-lago-sb}"
sb_require_root

libvirtd_pid=$(sb_pid_alive "$SB_STATE/libvirtd.pid" || true)
virtlogd_pid=$(sb_pid_alive "$SB_STATE/virtlogd.pid" || true)

# 1. through libvirt, while it answers: domains, then networks
if [ -n "$libvirtd_pid" ] && sb_virsh_ok; then
  v() { timeout 20 virsh -q -c "$SB_URI_OUTSIDE" "$@" 2>/dev/null; }
  for d in $(v list --all --name); do
    v destroy "$d" >/dev/null
    v undefine --nvram --snapshots-metadata --checkpoints-metadata "$d" >/dev/null ||
      v undefine "$d" >/dev/null
  done
  for n in $(v net-list --all --name); do
    v net-destroy "$n" >/dev/null
    v net-undefine "$n" >/dev/null
  done
  for p in $(v pool-list --all --name); do
    v pool-destroy "$p" >/dev/null
    v pool-undefine "$p" >/dev/null
  done
fi

# 2. stop the daemons, then anything left in the network namespace
stop_pids() { # TERM, wait up to 5 s, then KILL
  local pids="$*" p i
  [ -n "${pids// /}" ] || return 0
  kill -TERM $pids 2>/dev/null
  for i in $(seq 1 50); do
    local alive=
    for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ -z "$alive" ] && return 0
    sleep 0.1
  done
  kill -KILL $pids 2>/dev/null
  sleep 0.1
}
stop_pids $libvirtd_pid
if sb_netns_exists; then
  stop_pids $(ip netns pids "$SB_NAME" 2>/dev/null)
fi
stop_pids $virtlogd_pid

# 3. the namespace (its bridges and taps go with it) and the state
if sb_netns_exists; then
  ip netns delete "$SB_NAME" 2>/dev/null || sb_say "could not delete network namespace"
fi
rm -rf "$SB_STATE"
rmdir "$SB_ROOT" 2>/dev/null
sb_say "down"
exit 0
