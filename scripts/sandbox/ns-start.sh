#!/usr/bin/env bash
# Internal to up.sh: runs inside "unshare -m --propagation private", i.e. in a
# fresh private mount namespace, prepares that namespace and starts virtlogd
# and libvirtd in it (and in network namespace NAME). Never run it directly.
#
# Usage: ns-start.sh NAME   (SB_STATE prepared by up.sh; SB_DEBUG=1 traces it)
set -euo pipefail
[ -z "${SB_DEBUG:-}" ] || set -x
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
. "$HERE/common.sh" "$1"

# only ever in a mount namespace of our own: refuse to touch the host's /dev
[ "$(readlink /proc/self/ns/mnt)" != "$(readlink /proc/1/ns/mnt)" ] ||
  sb_die "ns-start.sh must run in a private mount namespace"

# ---- /dev: a tmpfs copy of the real /dev without kvm -------------------------
real=$SB_STATE/realdev
mkdir -p "$real"
mount --rbind /dev "$real"
mount -t tmpfs -o mode=0755,nosuid,size=16m lago-sandbox-dev /dev
# the file systems mounted below /dev (pts, shm, mqueue, hugepages, ...) are
# bound back; everything else (device nodes, symlinks, dirs) is copied
mounted=$(awk -v p="$real/" 'index($5, p) == 1 { print substr($5, length(p) + 1) }' /proc/self/mountinfo | sort -u)
for entry in "$real"/* "$real"/.[!.]*; do
  [ -e "$entry" ] || [ -L "$entry" ] || continue
  base=${entry#"$real"/}
  case "$base" in kvm) continue ;; esac
  if printf '%s\n' "$mounted" | grep -qx "$base"; then
    continue
  fi
  if [ -d "$entry" ] && [ ! -L "$entry" ] && printf '%s\n' "$mounted" | grep -q "^$base/"; then
    # a directory holding mount points: copy its plain entries only
    mkdir -p "/dev/$base"
    find "$entry" -mindepth 1 -maxdepth 1 | while read -r sub; do
      rel=${sub#"$real"/}
      printf '%s\n' "$mounted" | grep -qx "$rel" || cp -a "$sub" "/dev/$rel"
    done
    continue
  fi
  cp -a "$entry" "/dev/$base"
done
printf '%s\n' "$mounted" | awk 'NF' | awk -F/ '{ print NF "\t" $0 }' | sort -n | cut -f 2 |
  while read -r m; do
    [ -d "$real/$m" ] || continue
    mkdir -p "/dev/$m"
    mount --bind "$real/$m" "/dev/$m"
  done
umount -l "$real"
rmdir "$real" 2>/dev/null || true
[ ! -e /dev/kvm ] || sb_die "/dev/kvm still visible"

# ---- users libvirt resolves before it reads qemu.conf ---------------------------
# (libvirt-daemon-system would create them on the host; here they exist only
# inside this mount namespace). QEMU itself runs as root (qemu.conf).
for f in passwd group; do
  cp "/etc/$f" "$SB_STATE/$f"
done
for u in libvirt-qemu:64055 libvirt-dnsmasq:64056; do
  n=${u%%:*} id=${u##*:}
  grep -q "^$n:" "$SB_STATE/passwd" || echo "$n:x:$id:$id:lago sandbox:/var/lib/libvirt:/usr/sbin/nologin" >>"$SB_STATE/passwd"
  grep -q "^$n:" "$SB_STATE/group" || echo "$n:x:$id:" >>"$SB_STATE/group"
done
if [ -e "$SB_STATE/system" ]; then
  # system-like (up.sh with LAGO_SB_SYSTEM=1): QEMU's group kvm (with
  # libvirt-qemu in it), the socket's group libvirt, lago's group lago
  for g in kvm:64057 libvirt:64058 lago:64059; do
    n=${g%%:*} id=${g##*:}
    grep -q "^$n:" "$SB_STATE/group" || echo "$n:x:$id:" >>"$SB_STATE/group"
  done
  sed -i -E 's/^(kvm:[^:]*:[0-9]+:)$/\1libvirt-qemu/' "$SB_STATE/group"
fi
mount --bind "$SB_STATE/passwd" /etc/passwd
mount --bind "$SB_STATE/group" /etc/group
if [ -e "$SB_STATE/system" ]; then
  # the package's shared folders (as its postinst makes them), the host's
  # template repos read-only, and an empty /home for the users a test adds
  lib=$SB_STATE/var-lib-lago
  mkdir -p "$lib/subnets" "$lib/store" "$lib/repos" "$SB_STATE/home"
  chown root:root "$lib" "$lib/repos"
  chmod 0755 "$lib" "$lib/repos"
  chown root:lago "$lib/subnets" "$lib/store"
  chmod 2775 "$lib/subnets" "$lib/store"
  chmod 755 "$SB_STATE/home"
  if [ -d /var/lib/lago/repos ]; then
    mount --bind /var/lib/lago/repos "$lib/repos"
    mount -o remount,bind,ro "$lib/repos"
  fi
  mkdir -p /var/lib/lago
  mount --rbind "$lib" /var/lib/lago
  mount --bind "$SB_STATE/home" /home
fi

# ---- per-sandbox libvirt configuration, state and logs ------------------------
mount --bind "$SB_STATE/etc" /etc/libvirt
mkdir -p /var/lib/libvirt /var/log/libvirt
mount --bind "$SB_STATE/lib" /var/lib/libvirt
mount --bind "$SB_STATE/log" /var/log/libvirt
# its own /run/libvirt (sockets, pid files, network and domain run state), so
# that sandboxes do not see each other (the empty mount point may be created
# on the host's /run)
mkdir -p /run/libvirt
mount --bind "$SB_STATE/run" /run/libvirt

# ---- daemons, in network namespace NAME -----------------------------------------
ip netns exec "$SB_NAME" virtlogd -d -p "$SB_STATE/virtlogd.pid"
exec ip netns exec "$SB_NAME" libvirtd -d -p "$SB_STATE/libvirtd.pid"
