#!/usr/bin/env bash
# Installs the Debian packages lago needs to build, test and run its VMs.
# Idempotent; never starts a system libvirtd (policy-rc.d refuses service starts
# while installing), because the test sandbox runs its own inside a namespace.
set -euo pipefail

packages=(
  # build: the `virt` crate links libvirt
  pkg-config libvirt-dev
  # run: hypervisor, libvirt daemons and client, dnsmasq for NAT networks
  libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
  qemu-system-x86 qemu-utils dnsmasq-base iproute2 iptables
  # the embedded template: kernel, busybox init, dropbear sshd, bootloader, seed ISO
  linux-image-amd64 busybox-static dropbear-bin extlinux syslinux-common
  parted e2fsprogs dosfstools xorriso util-linux xz-utils kmod
  # guest libraries dropbear needs
  libtomcrypt1 libtommath1 libgmp10 zlib1g
  # tests: libvirt's schema check of generated XML (virt-xml-validate needs xmllint)
  libxml2-utils
  # tests/sandbox/floor.sh only: the OpenSSH client as the raw baseline
  openssh-client
  # optional in the template: SFTP for the guest (dropbear runs /usr/lib/sftp-server)
  openssh-sftp-server
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
policy=/usr/sbin/policy-rc.d
restore_policy=""
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  restore_policy=1
fi
trap '[ -n "$restore_policy" ] && rm -f "$policy"' EXIT

apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
