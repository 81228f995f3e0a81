#!/usr/bin/env bash
# Runs a command inside sandbox NAME's network namespace, where the VMs'
# networks are, with LIBVIRT_DEFAULT_URI set. libvirtd's socket is in the
# shared /run/libvirt, so virsh and the libvirt API work from here too.
#
# Usage: scripts/sandbox/run.sh NAME CMD [ARGS...]
#   e.g. scripts/sandbox/run.sh lago-sb virsh list --all
#        scripts/sandbox/run.sh lago-sb ssh root@192.168.200.10
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# -ge 2 ] || { echo "usage: $0 NAME CMD [ARGS...]" >&2; exit 2; }
# shellcheck source=common.sh
. "$HERE/common.sh" "$1"
shift
sb_require_root
sb_netns_exists || sb_die "not up (run scripts/sandbox/up.sh $SB_NAME)"
exec ip netns exec "$SB_NAME" env LIBVIRT_DEFAULT_URI="$SB_URI" LAGO_SANDBOX="$SB_NAME" \
  LAGO_SANDBOX_NETNS="$SB_NAME" LAGO_SANDBOX_STATE="$SB_STATE" "$@"
