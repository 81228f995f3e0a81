#!/usr/bin/env bash
# Runs a command inside sandbox NAME: its network namespace, where the VMs'
# networks are, and libvirtd's mount namespace, where its /run/libvirt is, so
# virsh and lago's default URL (qemu:///system) reach this sandbox's libvirtd.
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
sb_enter "$@"
