#!/usr/bin/env bash
# Removes the sandbox pair A+B made by pair-up.sh: stops host B's sshd,
# unbinds A's /root/.ssh, deletes the veth pair, then removes sandboxes B and
# A with down.sh (their VMs, networks, daemons, namespaces and state, with
# the keys and the sshd's files). Idempotent; succeeds when already down.
# Leaves the empty /run/sshd (and /root/.ssh, if pair-up.sh created it) on
# the host: another pair may still use them.
#
# Usage: scripts/sandbox/pair-down.sh A B
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# -eq 2 ] || { echo "usage: $0 A B" >&2; exit 2; }
A=$1 B=$2
# shellcheck source=common.sh
. "$HERE/common.sh" "$A" || exit 2
sb_as "$B" true || exit 2 # checks B's name
sb_require_root
A_STATE=$SB_ROOT/$A B_STATE=$SB_ROOT/$B
cd /

# 1. B's sshd (down.sh B would kill it too, as a process of netns B)
if pid=$(sb_pair_sshd_pid "$B_STATE"); then
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 50); do
    sb_pair_sshd_pid "$B_STATE" >/dev/null || break
    sleep 0.1
  done
  ! sb_pair_sshd_pid "$B_STATE" >/dev/null || kill -KILL "$pid" 2>/dev/null
fi

# 2. /root/.ssh in A's libvirtd mount namespace (which down.sh A ends anyway)
apid=$(sb_pid_alive "$A_STATE/libvirtd.pid" || true)
if [ -n "$apid" ] && findmnt -N "$apid" -n /root/.ssh >/dev/null 2>&1; then
  nsenter --mount="/proc/$apid/ns/mnt" -- umount /root/.ssh 2>/dev/null ||
    nsenter --mount="/proc/$apid/ns/mnt" -- umount -l /root/.ssh 2>/dev/null
fi

# 3. the veth pair (deleting one end deletes both)
for end in "$A:$SB_PAIR_A_DEV" "$B:$SB_PAIR_B_DEV"; do
  ns=${end%%:*} dev=${end#*:}
  [ -e "/run/netns/$ns" ] || continue
  ip -n "$ns" link show "$dev" >/dev/null 2>&1 && ip -n "$ns" link delete "$dev" 2>/dev/null
done

# 4. the sandboxes
"$HERE/down.sh" "$B"
"$HERE/down.sh" "$A"
echo "pair $A+$B: down" >&2
exit 0
