#!/usr/bin/env bash
# Builds two real-distribution Lago templates from Debian 12 (bookworm)
# packages with mmdebstrap, and writes a Lago template repository:
#
#   OUT_DIR/repo.json                         Lago repository (file source)
#   OUT_DIR/debian12-v1.qcow2                 systemd, OpenSSH, cloud-init
#                                             (NoCloud), qemu-guest-agent
#   OUT_DIR/debian12-nocloud-v1.qcow2         the same without cloud-init,
#                                             Lago-style: root password set,
#                                             sshd as Debian ships it (no
#                                             root password logins): lago
#                                             bootstraps it offline
#   OUT_DIR/<image>.hash, <image>.metadata    sha1 (hex), template metadata
#
# Both: Debian's generic kernel (linux-image-amd64), GRUB (BIOS) on ttyS0
# with no timeout, an initramfs holding only the drivers a lago VM needs
# (virtio, SCSI disk and CD-ROM, AHCI, PIIX IDE, ext4: cloud-init's
# detection runs before udev in the real root, so the seed's CD-ROM must be
# there already), systemd-networkd (DHCP on every NIC) and
# systemd-resolved, no SSH host keys (made at first boot) and an empty
# machine-id.
#
# Usage: scripts/distro/build-debian.sh [--force] [OUT_DIR]
#   OUT_DIR defaults to $LAGO_DISTRO_REPO, else /var/lib/lago/repos/debian12.
#   Downloaded .debs are kept in $LAGO_DISTRO_CACHE (default
#   /var/cache/lago-distro) between runs. Does nothing when the images are up
#   to date with this script (the package list and configuration live here);
#   --force rebuilds anyway. Needs root (mmdebstrap as root, a loop device for
#   GRUB) and apt access to Debian's archive. See docs/template.md.
set -euo pipefail

VERSION=v1
SUITE=bookworm
NAME=debian12
NC_NAME=debian12-nocloud
DISK_MIB=${LAGO_DISTRO_DISK_MIB:-2048}
ROOT_LABEL=lago-root
# The Lago-style image's root password (Lago's templates used 123456; lago's
# default `root-password` is the same).
NC_ROOT_PASSWORD=123456
CMDLINE="root=LABEL=$ROOT_LABEL ro console=ttyS0,115200 quiet loglevel=3"
CMDLINE="$CMDLINE mitigations=off nowatchdog audit=0 apparmor=0 random.trust_cpu=on"
# the initramfs loads these (and their dependencies) before the real root
INITRD_MODULES=(virtio_pci virtio_blk virtio_net virtio_scsi virtio_rng sd_mod sr_mod
  ahci ata_piix ext4 isofs)
BASE_PACKAGES=(linux-image-amd64 systemd-sysv udev systemd-resolved dbus openssh-server
  qemu-guest-agent ca-certificates iproute2 procps less)
CLOUD_PACKAGES=(cloud-init)

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"
REPO_ROOT=$(cd "$HERE/../.." && pwd)

die() { echo "build-debian.sh: error: $*" >&2; exit 1; }
log() { echo "build-debian.sh: $*" >&2; }
usage() { sed -n '2,30p' "$SELF" | sed 's/^# \{0,1\}//'; }

FORCE=0
OUT=""
for arg in "$@"; do
  case "$arg" in
    -f | --force) FORCE=1 ;;
    -h | --help) usage; exit 0 ;;
    -*) die "unknown option $arg (see --help)" ;;
    *) [ -z "$OUT" ] || die "only one OUT_DIR"; OUT=$arg ;;
  esac
done
OUT=${OUT:-${LAGO_DISTRO_REPO:-/var/lib/lago/repos/debian12}}
CACHE=${LAGO_DISTRO_CACHE:-/var/cache/lago-distro}

[ "$(id -u)" = 0 ] || die "must run as root (mmdebstrap as root, loop device for GRUB)"
# mmdebstrap and GRUB's BIOS modules come through the project's installer
if ! command -v mmdebstrap >/dev/null || ! command -v grub-install >/dev/null ||
  [ ! -d /usr/lib/grub/i386-pc ]; then
  bash "$REPO_ROOT/scripts/install-deps.sh"
fi
for tool in mmdebstrap grub-install qemu-img parted mkfs.ext4 losetup partx sha1sum flock mount; do
  command -v "$tool" >/dev/null || die "$tool not found (scripts/install-deps.sh installs it)"
done

mkdir -p "$OUT" "$CACHE/archives"
OUT=$(cd "$OUT" && pwd)
exec 9>"$OUT/.build.lock"
flock 9

IMG=$NAME-$VERSION.qcow2
NC_IMG=$NC_NAME-$VERSION.qcow2
FP=$( { echo "$SUITE $DISK_MIB $CMDLINE"; sha1sum "$SELF" | cut -d ' ' -f 1; } | sha1sum | cut -d ' ' -f 1)

write_repo_json() {
  local ts
  ts=$(stat -c %Y "$OUT/$IMG")
  cat >"$OUT/repo.json.tmp" <<EOF
{
  "name": "$NAME",
  "sources": { "local": { "type": "file", "args": { "root": "$OUT" } } },
  "templates": {
    "$NAME": { "versions": { "$VERSION": { "source": "local", "handle": "$IMG", "timestamp": $ts } } },
    "$NC_NAME": { "versions": { "$VERSION": { "source": "local", "handle": "$NC_IMG", "timestamp": $ts } } }
  }
}
EOF
  mv -f "$OUT/repo.json.tmp" "$OUT/repo.json"
}

up_to_date() {
  local i
  for i in "$IMG" "$NC_IMG"; do
    [ -f "$OUT/$i" ] && [ -f "$OUT/$i.hash" ] && [ -f "$OUT/$i.metadata" ] || return 1
  done
  [ "$(cat "$OUT/.inputs" 2>/dev/null)" = "$FP" ]
}
if [ "$FORCE" = 0 ] && up_to_date; then
  grep -q "\"root\": \"$OUT\"" "$OUT/repo.json" 2>/dev/null || write_repo_json
  log "up to date: $OUT/$IMG, $OUT/$NC_IMG (use --force to rebuild)"
  exit 0
fi

# leftovers of a killed build (we hold the lock)
for stale in "$OUT"/.build.*/; do
  [ -d "$stale" ] || continue
  if mountpoint -q "${stale}mnt" 2>/dev/null; then umount -l "${stale}mnt" || true; fi
  rm -rf "$stale"
done

T0=$(date +%s)
WORK=$(mktemp -d "$OUT/.build.XXXXXX")
MNT="$WORK/mnt"
LOOP=""
cleanup() {
  if mountpoint -q "$MNT" 2>/dev/null; then umount "$MNT" || umount -l "$MNT" || true; fi
  if [ -n "$LOOP" ]; then losetup -d "$LOOP" || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- files both images get before their packages install ----------------------
CONF="$WORK/conf"
mkdir -p "$CONF/etc/initramfs-tools/conf.d" "$CONF/etc/initramfs-tools/hooks" \
  "$CONF/etc/systemd/network" "$CONF/etc/systemd/resolved.conf.d" \
  "$CONF/etc/systemd/system/ssh.service.d" "$CONF/etc/systemd/system/multi-user.target.wants" \
  "$CONF/etc/systemd/system/systemd-networkd-wait-online.service.d" \
  "$CONF/etc/cloud/cloud.cfg.d" "$CONF/etc/dpkg/dpkg.cfg.d"
# the initramfs: only the listed modules, loaded at once (force_load)
cat >"$CONF/etc/initramfs-tools/conf.d/lago.conf" <<EOF
MODULES=list
COMPRESS=gzip
EOF
cat >"$CONF/etc/initramfs-tools/hooks/lago" <<EOF
#!/bin/sh
[ "\$1" = prereqs ] && exit 0
. /usr/share/initramfs-tools/hook-functions
for m in ${INITRD_MODULES[*]}; do force_load "\$m"; done
EOF
chmod 755 "$CONF/etc/initramfs-tools/hooks/lago"
# every NIC (ens*, eth*) by DHCP; online as soon as one is
cat >"$CONF/etc/systemd/network/50-lago-dhcp.network" <<'EOF'
[Match]
Name=en* eth*

[Network]
DHCP=yes
EOF
printf '[Service]\nExecStart=\nExecStart=/lib/systemd/systemd-networkd-wait-online --any --timeout=60\n' \
  >"$CONF/etc/systemd/system/systemd-networkd-wait-online.service.d/any.conf"
# the names of the other VMs are single labels served by libvirt's dnsmasq
printf '[Resolve]\nResolveUnicastSingleLabel=yes\n' >"$CONF/etc/systemd/resolved.conf.d/lago.conf"
# host keys when nothing (cloud-init's ssh_keys, lago's offline bootstrap)
# wrote any before sshd starts
cat >"$CONF/etc/systemd/system/lago-ssh-hostkeys.service" <<'EOF'
[Unit]
Description=SSH host keys at first boot
After=cloud-init.service
Before=ssh.service
ConditionPathExistsGlob=!/etc/ssh/ssh_host_*_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
EOF
ln -s /etc/systemd/system/lago-ssh-hostkeys.service \
  "$CONF/etc/systemd/system/multi-user.target.wants/lago-ssh-hostkeys.service"
printf '[Unit]\nWants=lago-ssh-hostkeys.service\nAfter=lago-ssh-hostkeys.service\n' \
  >"$CONF/etc/systemd/system/ssh.service.d/lago.conf"
# cloud-init: NoCloud only; the network is networkd's (every NIC, not only
# the first one cloud-init's fallback would configure)
cat >"$CONF/etc/cloud/cloud.cfg.d/90-lago.cfg" <<'EOF'
datasource_list: [ NoCloud, None ]
network: {config: disabled}
# the partition already fills the disk lago gives the VM
growpart: {mode: "off"}
resize_rootfs: false
# C.UTF-8 is built into libc: cloud-init's default (en_US.UTF-8) is generated
# at first boot (seconds under TCG), then refused by update-locale in this
# image, which leaves cloud-config.service failed and systemd degraded
locale: C.UTF-8
EOF
# a small image: no manuals, docs or translations
cat >"$CONF/etc/dpkg/dpkg.cfg.d/lago-small" <<'EOF'
path-exclude=/usr/share/man/*
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
path-exclude=/usr/share/lintian/*
EOF

# ---- root trees -------------------------------------------------------------------
# debootstrap ROOT PACKAGE...: bookworm in ROOT, .debs through $CACHE
debootstrap_tree() {
  local root=$1
  shift
  local include
  include=$(IFS=,; echo "$*")
  mmdebstrap --mode=root --variant=apt --include="$include" \
    --skip=download/empty --skip=essential/unlink \
    --setup-hook="mkdir -p \"\$1/var/cache/apt/archives\"" \
    --setup-hook="sync-in '$CACHE/archives' /var/cache/apt/archives" \
    --setup-hook="sync-in '$CONF' /" \
    --customize-hook="sync-out /var/cache/apt/archives '$CACHE/archives'" \
    "$SUITE" "$root" >"$WORK/mmdebstrap.log" 2>&1 ||
    { tail -n 40 "$WORK/mmdebstrap.log" >&2; die "mmdebstrap failed (log above)"; }
  rm -f "$CACHE/archives/lock"
}

# finish ROOT HOSTNAME: the configuration both images share, after install
finish_tree() {
  local r=$1
  echo "$2" >"$r/etc/hostname"
  printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' "$2" >"$r/etc/hosts"
  printf 'LABEL=%s / ext4 errors=remount-ro 0 1\n' "$ROOT_LABEL" >"$r/etc/fstab"
  chroot "$r" systemctl enable -q systemd-networkd systemd-resolved
  ln -sf /run/systemd/resolve/stub-resolv.conf "$r/etc/resolv.conf"
  # no SSH host keys, an empty machine-id: each VM makes its own
  rm -f "$r"/etc/ssh/ssh_host_*
  : >"$r/etc/machine-id"
  rm -f "$r/var/lib/dbus/machine-id"
  # a small image: no drivers for hardware a lago VM never has
  local kmods
  for kmods in "$r"/lib/modules/*/kernel; do
    rm -rf "$kmods"/sound "$kmods"/drivers/{gpu,media,net/wireless,infiniband,staging,bluetooth,iio,isdn} \
      "$kmods"/net/{bluetooth,wireless,mac80211}
    chroot "$r" depmod -a "$(basename "$(dirname "$kmods")")"
  done
  rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb "$r"/var/log/*.log
  rm -rf "$r"/tmp/* "$r"/var/tmp/*
}

# ---- disk: msdos label, one ext4 partition, GRUB ----------------------------------------
# make_image ROOT IMAGE METADATA_JSON
make_image() {
  local root=$1 img=$2 metadata=$3
  local raw="$WORK/disk.raw" kernel initrd
  kernel=$(cd "$root/boot" && ls vmlinuz-* | sort -V | tail -n 1)
  initrd=initrd.img-${kernel#vmlinuz-}
  [ -f "$root/boot/$initrd" ] || die "no $initrd in the image"
  mkdir -p "$root/boot/grub"
  cat >"$root/boot/grub/grub.cfg" <<EOF
serial --unit=0 --speed=115200
terminal_input serial
terminal_output serial
set timeout=0
menuentry "$img" {
  search --no-floppy --label --set=root $ROOT_LABEL
  linux /boot/$kernel $CMDLINE
  initrd /boot/$initrd
}
EOF
  rm -f "$raw"
  truncate -s "${DISK_MIB}M" "$raw"
  parted -s "$raw" mklabel msdos mkpart primary ext4 1MiB 100% set 1 boot on
  LOOP=$(losetup --find --show --partscan "$raw")
  [ -b "${LOOP}p1" ] || partx -a "$LOOP" || true
  [ -b "${LOOP}p1" ] || die "no partition device ${LOOP}p1"
  mkfs.ext4 -q -F -L "$ROOT_LABEL" -m 0 -d "$root" "${LOOP}p1"
  mkdir -p "$MNT"
  mount "${LOOP}p1" "$MNT"
  grub-install --target=i386-pc --boot-directory="$MNT/boot" --modules="part_msdos ext2 search_label serial" \
    "$LOOP" >"$WORK/grub.log" 2>&1 || { cat "$WORK/grub.log" >&2; die "grub-install failed"; }
  USED=$(df -k --output=used "$MNT" | tail -n 1 | tr -d ' ')
  umount "$MNT"
  losetup -d "$LOOP"
  LOOP=""
  qemu-img convert -q -c -f raw -O qcow2 "$raw" "$WORK/$img"
  rm -f "$raw"
  sha1sum "$WORK/$img" | cut -d ' ' -f 1 >"$WORK/$img.hash"
  echo "$metadata" >"$WORK/$img.metadata"
  log "$img: $(du -k "$WORK/$img" | cut -f 1) KiB, $USED KiB used in the file system"
}

# "bootstrap": "seed" (a NoCloud seed read by cloud-init) or "offline" (lago
# writes hostname, root password, keys into the VM's disk at init);
# "ssh-host-key": "seed" (cloud-init installs the seed's ssh_keys: lago pins
# the key it generated). See docs/template.md.
metadata_of() { # NAME BOOTSTRAP HOST_KEY ROOT_PASSWORD
  cat <<EOF
{
  "distro": "debian12",
  "root-password": "$4",
  "ssh-user": "root",
  "service_provider": "systemd",
  "boot": "bios",
  "bootstrap": "$2",
  "seed": "$([ "$2" = seed ] && echo nocloud || echo none)",
  "ssh-host-key": "$3",
  "virtual-size": $((DISK_MIB * 1024 * 1024))
}
EOF
}

log "building $NC_IMG"
NC_ROOT="$WORK/nc-root"
debootstrap_tree "$NC_ROOT" "${BASE_PACKAGES[@]}"
finish_tree "$NC_ROOT" "$NC_NAME"
echo "root:$NC_ROOT_PASSWORD" | chroot "$NC_ROOT" chpasswd
make_image "$NC_ROOT" "$NC_IMG" "$(metadata_of "$NC_NAME" offline offline "$NC_ROOT_PASSWORD")"
rm -rf "$NC_ROOT"

log "building $IMG"
CI_ROOT="$WORK/ci-root"
debootstrap_tree "$CI_ROOT" "${BASE_PACKAGES[@]}" "${CLOUD_PACKAGES[@]}"
finish_tree "$CI_ROOT" "$NAME"
# cloud-init's own root account: locked, key logins only (from the seed)
make_image "$CI_ROOT" "$IMG" "$(metadata_of "$NAME" seed seed "")"
rm -rf "$CI_ROOT"

# ---- publish: every file by rename; the inputs stamp goes last -----------------
rm -f "$OUT/.inputs"
for img in "$IMG" "$NC_IMG"; do
  mv -f "$WORK/$img.hash" "$OUT/$img.hash.tmp"
  mv -f "$WORK/$img.metadata" "$OUT/$img.metadata.tmp"
  mv -f "$WORK/$img" "$OUT/$img"
  mv -f "$OUT/$img.hash.tmp" "$OUT/$img.hash"
  mv -f "$OUT/$img.metadata.tmp" "$OUT/$img.metadata"
done
write_repo_json
echo "$FP" >"$OUT/.inputs.tmp"
mv -f "$OUT/.inputs.tmp" "$OUT/.inputs"
log "built $OUT in $(($(date +%s) - T0)) s"
