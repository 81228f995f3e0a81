#!/usr/bin/env bash
# Builds lago's embedded default template "lago-tiny" from Debian packages
# installed on this host (linux-image-amd64, busybox-static, dropbear-bin,
# bash, extlinux, ...) and writes a Lago template repository:
#
#   OUT_DIR/repo.json                        Lago repository (file source)
#   OUT_DIR/lago-tiny-v1.qcow2               BIOS-bootable compressed qcow2
#   OUT_DIR/lago-tiny-v1.qcow2.hash          sha1 of the image (hex)
#   OUT_DIR/lago-tiny-v1.qcow2.metadata      template metadata (JSON)
#
# and a second template, "lago-tiny-firstboot" (same files, -firstboot-), made
# like the templates lago did not build: it ignores the seed's ssh_keys and
# generates its SSH host key at first boot (printing it on the console in
# cloud-init's format), so lago must learn the key instead of pinning it.
#
# Usage: scripts/template/build.sh [--force] [OUT_DIR]
#   OUT_DIR defaults to $LAGO_EMBEDDED_REPO, else /var/lib/lago/repos/embedded.
#   Does nothing when the image is up to date with its inputs (this script,
#   the guest files next to it, the kernel and the package versions);
#   --force rebuilds anyway. Needs root (loop mount for extlinux).
# See docs/template.md.
set -euo pipefail

NAME=lago-tiny
VERSION=v1
IMG=$NAME-$VERSION.qcow2
FB_NAME=$NAME-firstboot
FB_IMG=$FB_NAME-$VERSION.qcow2
DISK_MIB=${LAGO_TINY_DISK_MIB:-40}
PART_START=$((1024 * 1024))
ROOT_LABEL=lago-root
# kernel command line: serial console, little printing, skip slow probes
CMDLINE="root=LABEL=$ROOT_LABEL console=ttyS0,115200 quiet loglevel=3 panic=10"
CMDLINE="$CMDLINE random.trust_cpu=on cryptomgr.notests no_timer_check"
CMDLINE="$CMDLINE 8250.nr_uarts=1 i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd"
CMDLINE="$CMDLINE mitigations=off nowatchdog audit=0 apparmor=0"
# PCI interrupt routing from the BIOS table, not ACPI: enabling each ACPI
# interrupt link (one per PCI slot group) costs ~0.4 s of AML under TCG
CMDLINE="$CMDLINE acpi=noirq edd=off"
# freed pages are zeroed: a warm image (docs/template.md) then saves the
# page cache the agent drops as zero pages (a smaller, faster restore)
CMDLINE="$CMDLINE init_on_free=1"
# Kernel modules, with their dependencies (modprobe --show-depends), in order.
# EARLY: loaded by the initramfs before it mounts the root: virtio (PCI, NIC,
#   disk, RNG), e1000, ext4, the seed's file systems (ISO9660, vfat) so that
#   a seed on a virtio disk is readable at once, the ACPI power button.
# LATE: on the root, loaded by rcS: the cdrom drivers (SCSI/cdrom core, IDE,
#   SATA, virtio-scsi), those of the controllers present while it looks for
#   a seed that is not on a virtio disk, all of them once sshd runs.
EARLY_MODULES=(virtio_pci virtio_net virtio_blk virtio_rng e1000 ext4
  isofs vfat nls_cp437 nls_iso8859_1 nls_utf8 button evdev)
LATE_MODULES=(sr_mod sd_mod virtio_scsi ahci ata_piix)
# STORAGE: also in the initramfs, loaded by /init only when the root file
#   system is not on a virtio disk (a root on sd*: virtio-scsi, SATA, IDE).
STORAGE_MODULES=(sd_mod virtio_scsi ahci ata_piix)
# warm starts (docs/template.md): the identity agent's virtio-serial port
EARLY_MODULES+=(virtio_console)
# accelerated variants that need CPU features TCG does not offer, and
# (crc32c_generic stays: ext4 always loads a crc32c driver)
SKIP_MODULES=(crc32c-intel crct10dif-pclmul)

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"

die() { echo "build.sh: error: $*" >&2; exit 1; }
log() { echo "build.sh: $*" >&2; }

usage() { sed -n '2,17p' "$SELF" | sed 's/^# \{0,1\}//'; }

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
OUT=${OUT:-${LAGO_EMBEDDED_REPO:-/var/lib/lago/repos/embedded}}

[ "$(id -u)" = 0 ] || die "must run as root (it loop-mounts the image to install extlinux)"
for tool in qemu-img parted mkfs.ext4 extlinux busybox dropbear dropbearkey dropbearconvert \
  modprobe ldd cpio gzip sha1sum flock mount losetup; do
  command -v "$tool" >/dev/null || die "$tool not found: run scripts/install-deps.sh"
done
MBR=/usr/lib/syslinux/mbr/mbr.bin
[ -r "$MBR" ] || die "$MBR not found (package syslinux-common)"

# newest installed kernel unless LAGO_TINY_KVER says otherwise
KVER=${LAGO_TINY_KVER:-$(find /boot -maxdepth 1 -name 'vmlinuz-*' -printf '%f\n' | sed 's/^vmlinuz-//' | sort -V | tail -n 1)}
[ -n "$KVER" ] && [ -r "/boot/vmlinuz-$KVER" ] || die "no kernel in /boot (package linux-image-amd64)"
[ -d "/lib/modules/$KVER" ] || die "/lib/modules/$KVER missing"

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# one build at a time per repository
exec 9>"$OUT/.build.lock"
flock 9

bin_path() { command -v "$1"; }
DROPBEAR=$(bin_path dropbear)
SFTP_SERVER=/usr/lib/openssh/sftp-server
GUEST_BINS=("$DROPBEAR" "$(bin_path dropbearkey)" "$(bin_path dropbearconvert)" "$(bin_path bash)")
command -v dbclient >/dev/null && GUEST_BINS+=("$(bin_path dbclient)")
[ -x "$SFTP_SERVER" ] && GUEST_BINS+=("$SFTP_SERVER")

inputs_fingerprint() {
  {
    echo "format 2 disk ${DISK_MIB}MiB kernel $KVER"
    echo "$CMDLINE"
    echo "${EARLY_MODULES[*]} / ${LATE_MODULES[*]} / ${SKIP_MODULES[*]}"
    sha1sum "$SELF" | cut -d ' ' -f 1
    (cd "$HERE" && find rootfs initramfs -type f -print0 | sort -z | xargs -0 sha1sum)
    stat -c '%n %s %Y' "/boot/vmlinuz-$KVER" /bin/busybox "$MBR" "${GUEST_BINS[@]}"
    dpkg-query -W busybox-static dropbear-bin extlinux syslinux-common libc6 libcrypt1 \
      libtomcrypt1 libtommath1 libgmp10 zlib1g libtinfo6 bash openssh-sftp-server "linux-image-$KVER" 2>/dev/null || true
  } | sha1sum | cut -d ' ' -f 1
}

write_repo_json() {
  local ts
  ts=$(stat -c %Y "$OUT/$IMG")
  cat >"$OUT/repo.json.tmp" <<EOF
{
  "name": "embedded",
  "sources": {
    "local": {
      "type": "file",
      "args": {
        "root": "$OUT"
      }
    }
  },
  "templates": {
    "$NAME": {
      "versions": {
        "$VERSION": {
          "source": "local",
          "handle": "$IMG",
          "timestamp": $ts
        }
      }
    },
    "$FB_NAME": {
      "versions": {
        "$VERSION": {
          "source": "local",
          "handle": "$FB_IMG",
          "timestamp": $ts
        }
      }
    }
  }
}
EOF
  mv -f "$OUT/repo.json.tmp" "$OUT/repo.json"
}

FP=$(inputs_fingerprint)
if [ "$FORCE" = 0 ] && [ -f "$OUT/$IMG" ] && [ -f "$OUT/$IMG.hash" ] && [ -f "$OUT/$IMG.metadata" ] &&
  [ -f "$OUT/$FB_IMG" ] && [ -f "$OUT/$FB_IMG.hash" ] && [ -f "$OUT/$FB_IMG.metadata" ] &&
  [ "$(cat "$OUT/.$IMG.inputs" 2>/dev/null)" = "$FP" ]; then
  # the repository may have moved: keep repo.json's root right
  grep -q "\"root\": \"$OUT\"" "$OUT/repo.json" 2>/dev/null || write_repo_json
  log "up to date: $OUT/$IMG (use --force to rebuild)"
  exit 0
fi

# leftovers of a build that was killed (we hold the lock: nobody else builds)
for stale in "$OUT"/.build.*/; do
  [ -d "$stale" ] || continue
  if mountpoint -q "${stale}mnt" 2>/dev/null; then umount -l "${stale}mnt" || true; fi
  rm -rf "$stale"
done

T0=$(date +%s.%N)
WORK=$(mktemp -d "$OUT/.build.XXXXXX")
MNT="$WORK/mnt"
cleanup() {
  if mountpoint -q "$MNT" 2>/dev/null; then umount "$MNT" || umount -l "$MNT" || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ROOT="$WORK/root"
INITRD="$WORK/initramfs"
log "building $IMG (kernel $KVER) in $WORK"

# ---- merged-/usr skeleton: every command lives in /usr/bin ------------------
skeleton() {
  local r=$1
  mkdir -p "$r"/{usr/bin,usr/lib/x86_64-linux-gnu,usr/lib64,etc,dev,proc,sys,run,tmp,mnt,root,boot,var/log}
  ln -s usr/bin "$r/bin"
  ln -s usr/bin "$r/sbin"
  ln -s bin "$r/usr/sbin"
  ln -s usr/lib "$r/lib"
  ln -s usr/lib64 "$r/lib64"
  chmod 1777 "$r/tmp"
  chmod 700 "$r/root"
  cp /bin/busybox "$r/usr/bin/busybox"
  local a
  for a in $(busybox --list); do
    case "$a" in busybox | linuxrc) continue ;; esac
    [ -e "$r/usr/bin/$a" ] || ln -s busybox "$r/usr/bin/$a"
  done
}

# copies a host file to the same path in the guest's merged-/usr tree
guest_path() {
  case "$1" in
    /lib/* | /lib64/* | /bin/* | /sbin/*) echo "/usr$1" ;;
    *) echo "$1" ;;
  esac
}
install_file() {
  local src=$1 dst
  dst="$2$(guest_path "${3:-$1}")"
  mkdir -p "$(dirname "$dst")"
  cp -L "$src" "$dst"
}

skeleton "$ROOT"

# ---- dropbear, its tools and their shared libraries --------------------------
for b in "${GUEST_BINS[@]}"; do
  case "$b" in
    "$SFTP_SERVER") install_file "$b" "$ROOT" /usr/lib/sftp-server ;; # dropbear's SFTPSERVER_PATH
    *) install_file "$b" "$ROOT" "/usr/bin/$(basename "$b")" ;;
  esac
  ldd "$b" | awk '/=> \//{print $3} /^[ \t]*\/[^ ]+ \(/{print $1}' | while read -r lib; do
    dst="$ROOT$(guest_path "$lib")"
    [ -e "$dst" ] || install_file "$lib" "$ROOT"
  done
done

# ---- configuration ------------------------------------------------------------
cp -a "$HERE/rootfs/." "$ROOT/"
E="$ROOT/etc"
# bash as root's shell, as on Lago's templates (deploy scripts say #!/bin/bash)
echo "root:x:0:0:root:/root:/bin/bash" >"$E/passwd"
printf 'root:x:0:\ntty:x:5:\n' >"$E/group"
# "*": no password (dropbear would refuse every login of a "!" locked account)
echo "root:*:19000:0:99999:7:::" >"$E/shadow"
chmod 600 "$E/shadow"
printf '/bin/sh\n/bin/ash\n/bin/bash\n' >"$E/shells"
printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n' >"$E/nsswitch.conf"
echo lago-tiny >"$E/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tlago-tiny\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$E/hosts"
: >"$E/resolv.conf"
cat >"$E/profile" <<'EOF'
export PATH=/usr/bin:/bin:/usr/sbin:/sbin
export HOME=${HOME:-/root}
PS1='\u@\h:\w\$ '
EOF
cat >"$E/os-release" <<EOF
NAME="lago-tiny"
ID=lago-tiny
PRETTY_NAME="lago-tiny $VERSION (busybox, dropbear, Debian kernel $KVER)"
VERSION_ID=$VERSION
EOF
chmod 755 "$E/init.d/"* "$E/acpi/PWRF/00000080" "$ROOT/usr/share/udhcpc/default.script"
chmod 755 "$E/lago/warm-agent" # warm starts: the identity agent
install -m 644 "/boot/vmlinuz-$KVER" "$ROOT/boot/vmlinuz"

# smoke test: the guest's dropbear tools run with only the copied libraries
chroot "$ROOT" /usr/bin/dropbearkey -t ed25519 -f /tmp/smoke >/dev/null 2>&1 ||
  die "dropbearkey does not run inside the image (missing libraries?)"
rm -f "$ROOT/tmp/smoke"
chroot "$ROOT" /bin/bash -c 'exit 0' || die "bash does not run inside the image (missing libraries?)"

# ---- initramfs: busybox + modules + /init ---------------------------------------
skeleton "$INITRD"
mkdir -p "$INITRD/newroot" "$INITRD/lib/modules"
mknod -m 600 "$INITRD/dev/console" c 5 1
mknod -m 666 "$INITRD/dev/null" c 1 3
install -m 755 "$HERE/initramfs/init" "$INITRD/init"
declare -A seen=()
for m in "${SKIP_MODULES[@]}"; do seen[$m.ko]=1; done
# copy_modules DIR NAME...: copies the modules and their dependencies not
# copied yet into DIR (decompressed) and writes DIR/modules.order
copy_modules() {
  local dir=$1 m kind path base
  shift
  local order=()
  mkdir -p "$dir"
  for m in "$@"; do
    while read -r kind path _; do
      [ "$kind" = insmod ] || continue
      base=$(basename "$path")
      base=${base%.xz}; base=${base%.zst}; base=${base%.gz}
      [ -n "${seen[$base]:-}" ] && continue
      seen[$base]=1
      case "$path" in
        *.ko) cp "$path" "$dir/$base" ;;
        *.ko.xz) xz -dc "$path" >"$dir/$base" ;;
        *.ko.zst) zstd -qdc "$path" >"$dir/$base" ;;
        *.ko.gz) gzip -dc "$path" >"$dir/$base" ;;
        *) die "unknown module file $path" ;;
      esac
      order+=("$base")
    done < <(modprobe -S "$KVER" --show-depends "$m" 2>/dev/null || log "module $m not found: skipped")
  done
  printf '%s\n' "${order[@]}" >"$dir/modules.order"
  log "$dir: ${#order[@]} modules"
}
copy_modules "$INITRD/lib/modules" "${EARLY_MODULES[@]}"
# ---- root on sd*: the storage drivers in the initramfs too (a subshell: the
# root's late copy below still gets them)
(copy_modules "$INITRD/lib/modules/storage" "${STORAGE_MODULES[@]}")
copy_modules "$ROOT/lib/modules/lago" "${LATE_MODULES[@]}"
(cd "$INITRD" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) | gzip -9n >"$ROOT/boot/initrd.img"
log "initramfs: $(du -k "$ROOT/boot/initrd.img" | cut -f 1) KiB"

mkdir -p "$ROOT/boot/extlinux"
cat >"$ROOT/boot/extlinux/extlinux.conf" <<EOF
DEFAULT lago
PROMPT 0
TIMEOUT 0
LABEL lago
  LINUX /boot/vmlinuz
  INITRD /boot/initrd.img
  APPEND $CMDLINE
EOF

# ---- disk: msdos label, one bootable ext4 partition, extlinux ------------------
# make_image ROOT_DIR IMAGE METADATA_JSON: the qcow2, its .hash and .metadata in $WORK
make_image() {
  local root=$1 img=$2 metadata=$3
  local raw="$WORK/disk.raw"
  rm -f "$raw"
  truncate -s "${DISK_MIB}M" "$raw"
  parted -s "$raw" mklabel msdos mkpart primary ext4 1MiB 100% set 1 boot on
  local part_size=$((DISK_MIB * 1024 * 1024 - PART_START))
  # extlinux 6.04 cannot boot 64bit or metadata_csum ext4
  mkfs.ext4 -q -F -L "$ROOT_LABEL" -b 4096 -N 4096 -m 0 -J size=4 \
    -O ^64bit,^metadata_csum,^huge_file \
    -E "offset=$PART_START,lazy_itable_init=0,lazy_journal_init=0,root_owner=0:0" \
    -d "$root" "$raw" "$((part_size / 4096))"
  mkdir -p "$MNT"
  mount -o "loop,offset=$PART_START,sizelimit=$part_size" "$raw" "$MNT"
  extlinux --install "$MNT/boot/extlinux" >/dev/null 2>&1 || die "extlinux --install failed"
  USED=$(df -k --output=used "$MNT" | tail -n 1 | tr -d ' ')
  umount "$MNT"
  dd if="$MBR" of="$raw" bs=440 count=1 conv=notrunc status=none
  qemu-img convert -q -c -f raw -O qcow2 "$raw" "$WORK/$img"
  rm -f "$raw"
  sha1sum "$WORK/$img" | cut -d ' ' -f 1 >"$WORK/$img.hash"
  echo "$metadata" >"$WORK/$img.metadata"
}

# "ssh-host-key": "seed" tells lago that this template installs the host key
# it finds in the NoCloud seed (so lago pins it at init); "console" that it
# generates its own and prints it on the serial console in cloud-init's
# format (so lago learns it from there). See docs/template.md.
# warm-start: the guest side of lago's warm starts (/etc/lago/warm-agent, protocol
# lago-warm-2) is in the image: see docs/template.md, "Warm starts"
metadata_of() { # NAME HOST_KEY_SOURCE
  cat <<EOF
{
  "distro": "$1",
  "root-password": "",
  "ssh-user": "root",
  "service_provider": "sysvinit",
  "boot": "bios",
  "seed": "nocloud",
  "ssh-host-key": "$2",
  "warm-start": "lago-warm-2",
  "kernel": "$KVER",
  "virtual-size": $((DISK_MIB * 1024 * 1024))
}
EOF
}
make_image "$ROOT" "$IMG" "$(metadata_of "$NAME" seed)"
# the first-boot variant: same tree, told to ignore the seed's host keys
echo firstboot >"$ROOT/etc/lago/host-keys"
make_image "$ROOT" "$FB_IMG" "$(metadata_of "$FB_NAME" console)"
rm -f "$ROOT/etc/lago/host-keys"

# ---- publish: every file by rename; the inputs stamp goes last -----------------
rm -f "$OUT/.$IMG.inputs"
for img in "$IMG" "$FB_IMG"; do
  mv -f "$WORK/$img.hash" "$OUT/$img.hash.tmp"
  mv -f "$WORK/$img.metadata" "$OUT/$img.metadata.tmp"
  mv -f "$WORK/$img" "$OUT/$img"
  mv -f "$OUT/$img.hash.tmp" "$OUT/$img.hash"
  mv -f "$OUT/$img.metadata.tmp" "$OUT/$img.metadata"
done
write_repo_json
echo "$FP" >"$OUT/.$IMG.inputs.tmp"
mv -f "$OUT/.$IMG.inputs.tmp" "$OUT/.$IMG.inputs"

T1=$(date +%s.%N)
log "built $OUT/$IMG: $(du -k "$OUT/$IMG" | cut -f 1) KiB on disk, ${DISK_MIB} MiB virtual, ${USED} KiB used in the file system, $(awk "BEGIN{printf \"%.1f\", $T1 - $T0}") s"
