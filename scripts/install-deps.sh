#!/usr/bin/env bash
# Installs the Debian packages lago needs to build, test and run its VMs, then
# checks that every command the project calls is there.
#
# Idempotent. When anything is missing, apt is asked for the WHOLE list, not
# only the missing packages: a fresh machine may carry a newer package from
# backports (qemu-utils) that installing another one (qemu-system-x86) would
# otherwise remove. Never starts a system libvirtd (policy-rc.d refuses service
# starts while installing): the sandbox runs its own inside a namespace.
#
# Extra packages for one caller (e.g. the tests' libguestfs-tools) come as
# arguments.
set -euo pipefail

packages=(
  # build: the `virt` crate links libvirt
  pkg-config libvirt-dev
  # run: hypervisor, libvirt daemons and client, dnsmasq for NAT networks
  libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
  qemu-system-x86 qemu-utils dnsmasq-base iproute2 iptables
  # the embedded template: kernel, busybox init, dropbear sshd, bash, bootloader, seed ISO
  linux-image-amd64 busybox-static dropbear-bin bash extlinux syslinux-common
  parted e2fsprogs dosfstools xorriso util-linux xz-utils kmod
  # guest libraries dropbear and bash need
  libtomcrypt1 libtommath1 libgmp10 zlib1g libtinfo6
  # tests: libvirt's schema check of generated XML (virt-xml-validate needs xmllint)
  libxml2-utils
  # tests: SASL authentication to libvirt (saslpasswd2 makes the user database)
  sasl2-bin libsasl2-modules
  # tests: the `dot` out-format's output is checked with Graphviz's `dot`
  graphviz
  # tests/sandbox/floor.sh only: the OpenSSH client as the raw baseline
  openssh-client
  # optional in the template: SFTP for the guest (dropbear runs /usr/lib/sftp-server)
  openssh-sftp-server
  # scripts/sandbox/pair-up.sh: host B's sshd (qemu+ssh:// and plain SSH from
  # host A; never started as a system service), ping to check the link
  openssh-server iputils-ping
  # tests: the Python SDK's Ansible inventory used by a real `ansible`
  ansible-core
  # scripts/distro/build-debian.sh: Debian templates from Debian's packages,
  # GRUB's BIOS modules and grub-install (grub2-common: grub-pc-bin does not
  # pull it in) for their disks
  mmdebstrap grub-pc-bin grub2-common
  "$@"
)

# Commands the build, the template build, the sandbox and the tests call.
commands=(
  pkg-config qemu-img qemu-system-x86_64 virsh libvirtd virtlogd dnsmasq ip
  iptables xorriso mkfs.ext4 parted partx losetup extlinux xz busybox
  dropbear xmllint ssh unshare saslpasswd2 dot sshd ssh-keygen nsenter ping ansible
  mmdebstrap grub-install
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  policy=/usr/sbin/policy-rc.d
  restore_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    restore_policy=1
  fi
  trap '[ -z "$restore_policy" ] || rm -f "$policy"' EXIT
  apt-get update -qq
  # qemu-utils must match qemu-system-x86's version: a newer one from
  # backports (installed on some fresh machines, with no backports source
  # configured) conflicts with it, so ask for the same version, downgrading.
  qemu_version=$(apt-cache policy qemu-system-x86 | awk '/Candidate:/ { print $2 }')
  request=()
  for p in "${packages[@]}"; do
    case "$p" in
      qemu-utils) request+=("$p=$qemu_version") ;;
      *) request+=("$p") ;;
    esac
  done
  # The whole list, so that apt keeps (or reinstalls) every package we need.
  apt-get install -y -qq --no-install-recommends --allow-downgrades "${request[@]}" >/dev/null
fi

absent=()
for c in "${commands[@]}"; do
  command -v "$c" >/dev/null 2>&1 || [ -x "/usr/sbin/$c" ] || [ -x "/sbin/$c" ] || absent+=("$c")
done
if [ ${#absent[@]} -gt 0 ]; then
  echo "install-deps: still missing after installing packages: ${absent[*]}" >&2
  exit 1
fi
