#!/usr/bin/env bash
# The "raw floor": does with plain virsh + qemu-img + ssh what `lago start`
# does, inside the VM sandbox, and prints how long it takes. It is both the
# proof that the embedded template boots and answers SSH the way lago expects
# and the baseline for lago's own timings.
#
#   1. template: scripts/template/build.sh REPO (no-op when up to date)
#   2. per VM: qcow2 overlay on the template, an ed25519 host key, a NoCloud
#      seed ISO (meta-data, user-data) with root's key and the host key
#   3. t0; virsh net-create (NAT 192.168.200.0/24, one DHCP host per VM);
#      virsh create of every VM (TCG, 256 MiB (-m), 1 vcpu, virtio disk and NIC,
#      seed cdrom, serial console to a file)
#   4. waits until `ssh root@IP true` works for every VM, with
#      StrictHostKeyChecking=yes against the host key from the seed, and
#      prints the seconds from t0
#   5. checks: `hostname` is the seed's name, ssh-keyscan shows the pinned
#      key; with -p: powers VMs off (ssh poweroff / ACPI) and waits
#   6. removes everything (also on failure or Ctrl-C)
#
# Usage: tests/sandbox/floor.sh [-n N] [-S A.B.C] [-b ide|sata|scsi|virtio] [-s SANDBOX] [-r REPO]
#                               [-t IMAGE] [-m MIB] [-p] [-k] [-v]
#   -n N        VMs started together (default 1)
#   -S A.B.C    the network's /24 (default 192.168.200; when the sandbox
#               already uses it, the first free one of 192.168.210-250)
#   -b BUS      where the seed is: ide, sata or scsi (virtio-scsi) cdrom, or
#               virtio (a read-only virtio disk, the fastest; default ide)
#   -s SANDBOX  sandbox name (default lago-sb); brought up if needed, and
#               taken down at the end if this script brought it up
#   -r REPO     template repository (default $LAGO_EMBEDDED_REPO or
#               /var/lib/lago/repos/embedded)
#   -t IMAGE    boot this qcow2 instead of the repository's lago-tiny (any
#               image that reads a NoCloud seed, e.g. the debian12 template
#               of scripts/distro/build-debian.sh; it is not built here)
#   -m MIB      memory of each VM (default 256)
#   -p          also test power-off: odd VMs `ssh poweroff`, even VMs
#               `virsh shutdown` (ACPI power button)
#   -k          keep the VMs, network and sandbox running (prints how to reach them)
#   -v          print each VM's serial console at the end
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
N=1
BUS=ide
SB=lago-sb
REPO=${LAGO_EMBEDDED_REPO:-/var/lib/lago/repos/embedded}
POWER=0
KEEP=0
VERBOSE=0
SUBNET=""
IMAGE=""
MEM=256
while getopts "n:S:b:s:r:t:m:pkvh" opt; do
  case "$opt" in
    n) N=$OPTARG ;;
    S) SUBNET=$OPTARG ;;
    b) BUS=$OPTARG ;;
    s) SB=$OPTARG ;;
    r) REPO=$OPTARG ;;
    t) IMAGE=$OPTARG ;;
    m) MEM=$OPTARG ;;
    p) POWER=1 ;;
    k) KEEP=1 ;;
    v) VERBOSE=1 ;;
    h) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) exit 2 ;;
  esac
done
case "$N" in '' | *[!0-9]*) echo "floor: -n wants a number" >&2; exit 2 ;; esac
[ "$N" -ge 1 ] && [ "$N" -le 50 ] || { echo "floor: -n between 1 and 50" >&2; exit 2; }
case "$MEM" in '' | *[!0-9]*) echo "floor: -m wants MiB" >&2; exit 2 ;; esac
case "$BUS" in ide | sata | scsi | virtio) ;; *) echo "floor: -b ide|sata|scsi|virtio" >&2; exit 2 ;; esac
[ "$(id -u)" = 0 ] || { echo "floor: must run as root" >&2; exit 1; }
for tool in virsh qemu-img xorriso ssh ssh-keygen ssh-keyscan ip; do
  command -v "$tool" >/dev/null || { echo "floor: $tool missing: run scripts/install-deps.sh" >&2; exit 1; }
done

# the sandbox's own libvirtd (each sandbox has its own /run/libvirt)
export LIBVIRT_DEFAULT_URI="qemu:///system?socket=/run/lago-sandbox/$SB/run/libvirt-sock"
NET=lago-floor
BRIDGE=lagofloor0
PREFIX=floor-vm
now() { date +%s.%N; }
since() { awk "BEGIN{printf \"%.1f\", $(now) - $1}"; }
say() { echo "floor: $*" >&2; }
insb() { ip netns exec "$SB" "$@"; }

WORK=""
SB_STARTED=0
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # background virsh/ssh first, so that no domain appears after the destroy
  local bg
  bg=$(jobs -p)
  if [ -n "$bg" ]; then
    kill $bg 2>/dev/null || true
    wait 2>/dev/null || true
  fi
  if [ "$KEEP" = 1 ] && [ "$rc" = 0 ]; then
    say "kept: sandbox $SB, network $NET, VMs ${PREFIX}1..$N, files in $WORK"
    say "  ssh: $TOP/scripts/sandbox/run.sh $SB ssh -i $WORK/id_ed25519 -o UserKnownHostsFile=$WORK/known_hosts root@$SUBNET.11"
    exit 0
  fi
  if [ "$VERBOSE" = 1 ] || [ "$rc" != 0 ]; then
    for i in $(seq 1 "$N"); do
      [ -f "$WORK/vm$i.console.log" ] || continue
      echo "---- serial console of $PREFIX$i (last 40 lines) ----" >&2
      tail -n 40 "$WORK/vm$i.console.log" | tr -d '\r' >&2
    done
  fi
  for i in $(seq 1 "$N"); do virsh -q destroy "$PREFIX$i" >/dev/null 2>&1 || true; done
  virsh -q net-destroy "$NET" >/dev/null 2>&1 || true
  [ -z "$WORK" ] || rm -rf "$WORK"
  if [ "$SB_STARTED" = 1 ]; then "$TOP/scripts/sandbox/down.sh" "$SB" >/dev/null 2>&1 || true; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- 1. template and sandbox -----------------------------------------------------
if [ -n "$IMAGE" ]; then
  TEMPLATE=$(realpath "$IMAGE")
else
  "$TOP/scripts/template/build.sh" "$REPO"
  TEMPLATE="$REPO/lago-tiny-v1.qcow2"
fi
[ -f "$TEMPLATE" ] || { say "no template $TEMPLATE"; exit 1; }
if ! ip netns list | grep -qw "^$SB" || ! virsh -q version >/dev/null 2>&1; then
  SB_STARTED=1
  "$TOP/scripts/sandbox/up.sh" "$SB" >/dev/null
fi
for i in $(seq 1 "$N"); do virsh -q destroy "$PREFIX$i" >/dev/null 2>&1 || true; done
virsh -q net-destroy "$NET" >/dev/null 2>&1 || true
# a /24 nobody uses in the sandbox (lago itself starts at 192.168.200)
if [ -z "$SUBNET" ]; then
  used=$(ip -n "$SB" -4 -o addr show | awk '{print $4}')
  for c in 200 $(seq 210 250); do
    if ! printf '%s\n' "$used" | grep -q "^192\.168\.$c\."; then SUBNET=192.168.$c; break; fi
  done
  [ -n "$SUBNET" ] || { say "no free 192.168.x.0/24 in the sandbox"; exit 1; }
fi

# ---- 2. disks, keys and seeds (lago does this in `lago init`) ---------------------
WORK=$(mktemp -d /var/tmp/lago-floor.XXXXXX)
ssh-keygen -q -t ed25519 -N '' -C floor-client -f "$WORK/id_ed25519"
: >"$WORK/known_hosts"
hosts=""
for i in $(seq 1 "$N"); do
  name=$PREFIX$i
  ip=$SUBNET.$((10 + i))
  mac=$(printf '52:54:00:c8:00:%02x' "$i")
  hosts="$hosts<host mac='$mac' name='$name' ip='$ip'/>"
  qemu-img create -q -f qcow2 -F qcow2 -b "$TEMPLATE" "$WORK/vm$i.qcow2"
  ssh-keygen -q -t ed25519 -N '' -C "root@$name" -f "$WORK/vm$i.hostkey"
  echo "$ip $(cut -d ' ' -f 1,2 "$WORK/vm$i.hostkey.pub")" >>"$WORK/known_hosts"
  mkdir -p "$WORK/seed$i"
  cat >"$WORK/seed$i/meta-data" <<EOF
instance-id: $name-$(date +%s)
local-hostname: $name
EOF
  {
    echo "#cloud-config"
    # cloud-init's images lock root out unless told (lago-tiny ignores it)
    echo "disable_root: false"
    echo "ssh_authorized_keys:"
    echo "  - $(cat "$WORK/id_ed25519.pub")"
    echo "ssh_keys:"
    echo "  ed25519_private: |"
    sed 's/^/    /' "$WORK/vm$i.hostkey"
    echo "  ed25519_public: $(cat "$WORK/vm$i.hostkey.pub")"
  } >"$WORK/seed$i/user-data"
  xorriso -as mkisofs -quiet -V cidata -J -r -o "$WORK/vm$i.seed.iso" \
    "$WORK/seed$i/meta-data" "$WORK/seed$i/user-data" 2>/dev/null
  device=cdrom
  case "$BUS" in
    ide) target="<target dev='hdc' bus='ide'/>" ;;
    sata) target="<target dev='sda' bus='sata'/>" ;;
    scsi) target="<target dev='sda' bus='scsi'/>" ;;
    virtio) target="<target dev='vdb' bus='virtio'/>"; device=disk ;;
  esac
  ctrl=""
  [ "$BUS" = scsi ] && ctrl="<controller type='scsi' model='virtio-scsi'/>"
  cat >"$WORK/vm$i.xml" <<EOF
<domain type='qemu'>
  <name>$name</name>
  <memory unit='MiB'>$MEM</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <features><acpi/><apic/></features>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='unsafe'/>
      <source file='$WORK/vm$i.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='$device'>
      <driver name='qemu' type='raw'/>
      <source file='$WORK/vm$i.seed.iso'/>
      $target
      <readonly/>
    </disk>
    $ctrl
    <controller type='usb' model='none'/>
    <interface type='network'>
      <source network='$NET'/>
      <mac address='$mac'/>
      <model type='virtio'/>
      <rom enabled='no'/>
    </interface>
    <serial type='file'>
      <source path='$WORK/vm$i.console.log'/>
      <target port='0'/>
    </serial>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
    <memballoon model='none'/>
  </devices>
</domain>
EOF
done
cat >"$WORK/net.xml" <<EOF
<network>
  <name>$NET</name>
  <forward mode='nat'/>
  <bridge name='$BRIDGE' stp='off' delay='0'/>
  <ip address='$SUBNET.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='$SUBNET.100' end='$SUBNET.254'/>
      $hosts
    </dhcp>
  </ip>
</network>
EOF

# ---- 3. network and VMs --------------------------------------------------------
say "starting $N VM(s) on $SUBNET.0/24, seed on $BUS, load average $(cut -d ' ' -f 1-3 /proc/loadavg)"
T0=$(now)
virsh -q net-create "$WORK/net.xml" >/dev/null
T_NET=$(since "$T0")
for i in $(seq 1 "$N"); do
  virsh -q create "$WORK/vm$i.xml" >/dev/null &
done
wait
T_DOM=$(since "$T0")
say "network up after ${T_NET} s, all domains started after ${T_DOM} s"

# ---- 4. wait for SSH ----------------------------------------------------------------
SSH_OPTS=(-i "$WORK/id_ed25519" -o BatchMode=yes -o StrictHostKeyChecking=yes
  -o UserKnownHostsFile="$WORK/known_hosts" -o GlobalKnownHostsFile=/dev/null
  -o HostKeyAlgorithms=ssh-ed25519 -o ConnectTimeout=2 -o LogLevel=ERROR)
wait_ssh() { # VM index; writes the seconds from t0 to $WORK/vm$i.ready
  local i=$1 ip=$SUBNET.$((10 + $1)) deadline
  deadline=$(awk "BEGIN{printf \"%.3f\", $T0 + 180}")
  while awk "BEGIN{exit !($(now) < $deadline)}"; do
    # the port first (cheap), then a real login
    if insb timeout 1 bash -c "exec 3<>/dev/tcp/$ip/22" 2>/dev/null &&
      insb timeout 15 ssh "${SSH_OPTS[@]}" "root@$ip" true 2>/dev/null; then
      since "$T0" >"$WORK/vm$i.ready"
      return 0
    fi
    sleep 0.1
  done
  return 1
}
pids=()
for i in $(seq 1 "$N"); do
  wait_ssh "$i" &
  pids+=($!)
done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=1; done
for i in $(seq 1 "$N"); do
  if [ -f "$WORK/vm$i.ready" ]; then
    say "$PREFIX$i ($SUBNET.$((10 + i))): ssh after $(cat "$WORK/vm$i.ready") s"
  else
    say "$PREFIX$i ($SUBNET.$((10 + i))): NO ssh after 180 s"
  fi
done
[ "$failed" = 0 ] || exit 1
T_ALL=$(since "$T0")
echo "floor: $N VM(s): network created -> every VM answers ssh: ${T_ALL} s (slowest VM $(sort -n "$WORK"/vm*.ready | tail -n 1) s)"

# ---- 5. checks ------------------------------------------------------------------
for i in $(seq 1 "$N"); do
  ip=$SUBNET.$((10 + i))
  got=$(insb ssh "${SSH_OPTS[@]}" "root@$ip" hostname)
  [ "$got" = "$PREFIX$i" ] || { say "$PREFIX$i: hostname is '$got'"; exit 1; }
  presented=$(insb ssh-keyscan -T 5 -t ed25519 "$ip" 2>/dev/null | awk '{print $2, $3}')
  pinned=$(cut -d ' ' -f 1,2 "$WORK/vm$i.hostkey.pub")
  [ "$presented" = "$pinned" ] || { say "$PREFIX$i: host key '$presented' is not the seed's '$pinned'"; exit 1; }
done
say "checked: hostnames from the seeds, host keys pinned from the seeds"

if [ "$POWER" = 1 ]; then
  TP=$(now)
  for i in $(seq 1 "$N"); do
    if [ $((i % 2)) = 1 ]; then
      insb ssh "${SSH_OPTS[@]}" "root@$SUBNET.$((10 + i))" poweroff 2>/dev/null || true
    else
      virsh -q shutdown "$PREFIX$i" >/dev/null
    fi
  done
  for i in $(seq 1 "$N"); do
    how="ssh poweroff"
    [ $((i % 2)) = 1 ] || how="ACPI (virsh shutdown)"
    ok=
    for _ in $(seq 1 300); do
      virsh -q domstate "$PREFIX$i" >/dev/null 2>&1 || { ok=1; break; }
      sleep 0.1
    done
    [ -n "$ok" ] || { say "$PREFIX$i did not power off after $how"; exit 1; }
    say "$PREFIX$i: powered off by $how after $(since "$TP") s"
  done
fi
