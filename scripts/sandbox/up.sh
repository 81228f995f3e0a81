#!/usr/bin/env bash
# Brings up VM sandbox NAME (default lago-sb): a network namespace NAME with
# its own libvirtd + virtlogd, which see a /dev without kvm (so every QEMU
# runs under TCG and libvirt does not re-probe QEMU on each domain start) and
# a qemu.conf with namespaces = [] (see docs/template.md and
# ARCHITECTURE.md, "Facts about these machines").
#
# Usage: [LAGO_SB_SYSTEM=1] scripts/sandbox/up.sh [NAME]
#   LAGO_SB_SYSTEM=1: libvirtd configured as Debian's libvirt-daemon-system
#   configures it (docs/install.md): QEMU runs as user libvirt-qemu, group
#   kvm, with dynamic ownership; the socket belongs to group libvirt, mode
#   0770. Inside it, the users and groups exist (libvirt-qemu, kvm, libvirt,
#   lago), /var/lib/lago is the sandbox's own (subnets and store root:lago 2775, as the package
#   makes it, with the host's repos read-only) and so is /home (empty).
#   Idempotent: on a running sandbox it only prints the environment.
#   Prints, on stdout, shell lines for the caller: eval "$(up.sh NAME)".
#   Run commands in it with scripts/sandbox/run.sh NAME CMD...; remove it
#   with scripts/sandbox/down.sh NAME. Sandboxes of different names run at
#   once (each has its own /run/libvirt).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
. "$HERE/common.sh" "${1:-lago-sb}"
sb_require_root
for tool in ip unshare nsenter libvirtd virtlogd virsh; do
  command -v "$tool" >/dev/null || sb_die "$tool not found: run scripts/install-deps.sh"
done

if sb_running; then
  sb_say "already up"
  sb_print_env
  exit 0
fi

# leftovers of a crashed sandbox of this name
if sb_netns_exists || [ -d "$SB_STATE" ]; then
  sb_say "cleaning up a half-up sandbox first"
  "$HERE/down.sh" "$SB_NAME" >/dev/null
fi

t0=$(date +%s.%N)
mkdir -p "$SB_STATE"/{etc,lib,log,run}
cleanup_failed() {
  sb_say "failed to start; logs:"
  tail -n 20 "$SB_STATE"/*.log >&2 2>/dev/null || true
  "$HERE/down.sh" "$SB_NAME" >/dev/null 2>&1 || true
}
trap cleanup_failed ERR

ip netns add "$SB_NAME"
ip -n "$SB_NAME" link set lo up

# /etc/libvirt for this sandbox: the host's files, minus anything that would
# autostart and the host's own domains, networks and pools (e.g. the
# `default` network libvirt-daemon-system defines: a sandbox starts with
# none), plus our qemu.conf / libvirtd.conf / virtlogd.conf
cp -a /etc/libvirt/. "$SB_STATE/etc/"
rm -rf "$SB_STATE/etc/qemu/autostart" "$SB_STATE/etc/qemu/networks/autostart" \
  "$SB_STATE/etc/storage/autostart" "$SB_STATE/etc/nwfilter"
rm -f "$SB_STATE"/etc/qemu/*.xml "$SB_STATE"/etc/qemu/networks/*.xml "$SB_STATE"/etc/storage/*.xml
mkdir -p "$SB_STATE/log/qemu" "$SB_STATE/lib/qemu" "$SB_STATE/lib/dnsmasq" "$SB_STATE/lib/network"
strip_keys() { # drops our keys from a host config file, if it exists
  [ -f "$1" ] || return 0
  grep -v -E "^[[:space:]]*($2)[[:space:]]*=" "$1" || true
}
# Default: QEMU shares libvirtd's mount namespace (whose /dev has no kvm),
# runs as root, with no security driver, no ownership changes and no cgroups
# (no systemd here). System-like (LAGO_SB_SYSTEM=1): libvirt-daemon-system's
# settings instead: QEMU as libvirt-qemu:kvm, libvirt changes the owner of
# the images QEMU opens (dynamic_ownership) and restores it after; the
# socket belongs to group libvirt, 0770; no polkit here, so the socket's
# permissions are the access check (auth_unix_rw = "none"), as Debian's
# polkit rule for group libvirt is.
qemu_user=root qemu_group=root ownership=0 socket_conf=""
if [ -n "${LAGO_SB_SYSTEM:-}" ]; then
  touch "$SB_STATE/system"
  qemu_user=libvirt-qemu qemu_group=kvm ownership=1
  socket_conf='unix_sock_group = "libvirt"
unix_sock_ro_perms = "0777"
unix_sock_rw_perms = "0770"
auth_unix_ro = "none"
auth_unix_rw = "none"'
fi
{
  strip_keys /etc/libvirt/qemu.conf 'namespaces|security_driver|user|group|dynamic_ownership|remember_owner|cgroup_controllers'
  cat <<EOF
# lago sandbox (see up.sh)
namespaces = []
security_driver = "none"
user = "$qemu_user"
group = "$qemu_group"
dynamic_ownership = $ownership
remember_owner = $ownership
cgroup_controllers = []
EOF
} >"$SB_STATE/etc/qemu.conf"
{
  strip_keys /etc/libvirt/libvirtd.conf 'log_outputs|log_filters|unix_sock_group|unix_sock_ro_perms|unix_sock_rw_perms|auth_unix_ro|auth_unix_rw'
  echo "log_outputs = \"3:file:$SB_STATE/libvirtd.log\""
  [ -z "$socket_conf" ] || printf '%s\n' "$socket_conf"
} >"$SB_STATE/etc/libvirtd.conf"
{
  strip_keys /etc/libvirt/virtlogd.conf 'log_outputs'
  echo "log_outputs = \"3:file:$SB_STATE/virtlogd.log\""
} >"$SB_STATE/etc/virtlogd.conf"

unshare -m --propagation private -- "$HERE/ns-start.sh" "$SB_NAME" 2>"$SB_STATE/ns-start.log" || { cat "$SB_STATE/ns-start.log" >&2; false; }

# libvirtd -d returns once it has forked; wait until it answers
ok=
for i in $(seq 1 600); do
  if sb_virsh_ok; then ok=1; break; fi
  # libvirtd writes its pid file at once; gone after 2 s means it died
  if [ "$i" -gt 20 ] && ! sb_pid_alive "$SB_STATE/libvirtd.pid" >/dev/null; then break; fi
  sleep 0.1
done
[ -n "$ok" ] || { sb_say "libvirtd does not answer"; false; }
trap - ERR

sb_say "up in $(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $t0}") s (libvirtd pid $(cat "$SB_STATE/libvirtd.pid"))"
sb_print_env
