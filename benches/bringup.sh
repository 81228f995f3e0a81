#!/usr/bin/env bash
# One bring-up of N VMs from the embedded template, to be timed as a whole
# process by a benchmark tool (hyperfine, /usr/bin/time -v, ...):
#
#   benches/bringup.sh lago N    lago init && lago start (all VMs answer SSH)
#                                && lago destroy, N VMs on one NAT network
#   benches/bringup.sh floor N   the same with plain qemu-img + virsh + ssh
#                                (tests/sandbox/floor.sh), the raw floor
#   benches/bringup.sh hosts N   as `lago N`, with the last VM on a second
#                                libvirt host: SANDBOX must be host A of a
#                                sandbox pair (scripts/sandbox/pair-up.sh),
#                                LAGO_PAIR_B_URL host B's URL
#
# Both run inside the VM sandbox SANDBOX (default lago-sb, must be up:
# scripts/sandbox/up.sh) and use the same template, memory (256 MiB), vcpu
# (1), TCG, seed bus (sata) and network layout. Example:
#
#   hyperfine -r 5 'benches/bringup.sh lago 3' 'benches/bringup.sh floor 3'
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
kind=${1:?usage: bringup.sh lago|floor N}
n=${2:-1}
sandbox=${SANDBOX:-lago-sb}

case "$kind" in
floor)
  exec bash "$top/tests/sandbox/floor.sh" -s "$sandbox" -n "$n" -b sata
  ;;
lago | hosts)
  work=$(mktemp -d /tmp/lago-bench.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  {
    if [ "$kind" = hosts ]; then
      echo "hosts: {hv2: {libvirt_url: '${LAGO_PAIR_B_URL:?host B of the pair}'}}"
    fi
    echo "domains:"
    for i in $(seq 0 $((n - 1))); do
      host=
      [ "$kind" != hosts ] || [ "$i" != $((n - 1)) ] || host="host: hv2"
      cat <<VM
  vm$i:
    $host
    memory: 256
    vcpu: 1
    nics: [{net: lago}]
    disks: [{template_name: lago-tiny, type: template, name: root, dev: vda, format: qcow2}]
VM
    done
    echo "nets:"
    echo "  lago: {type: nat, management: true}"
  } >"$work/LagoInitFile"
  cd "$work"
  export LAGO__LAGO__LEASE_DIR=$work/leases LAGO__LAGO__DOMAIN_TYPE=qemu
  export LAGO__INIT__TEMPLATE_STORE=${LAGO_BENCH_STORE:-/var/lib/lago/store}
  lago=("$top/scripts/sandbox/run.sh" "$sandbox" "$top/target/release/lago")
  [ -x "$top/target/release/lago" ] || lago=("$top/scripts/sandbox/run.sh" "$sandbox" "$top/target/debug/lago")
  status=0
  bash "${lago[@]}" init --template-repo-name embedded >/dev/null &&
    bash "${lago[@]}" start || status=$?
  bash "${lago[@]}" destroy -y >/dev/null
  exit $status
  ;;
*)
  echo "usage: bringup.sh lago|floor N" >&2
  exit 2
  ;;
esac
