#!/usr/bin/env bash
# `lago revert` to SSH-ready against a cold boot (`lago stop && lago start`),
# on one environment of N VMs from the embedded template, for a benchmark
# tool that times whole processes and pairs two commands:
#
#   benches/revert.sh setup N DIR   init + start N VMs in DIR, snapshot `bench`
#   benches/revert.sh revert DIR    lago revert bench (the VMs answer SSH)
#   benches/revert.sh cold DIR      lago stop && lago start
#   benches/revert.sh teardown DIR  lago destroy, DIR removed
#
# Inside the VM sandbox SANDBOX (default lago-sb). Example:
#
#   benches/revert.sh setup 3 /tmp/rv3
#   hyperfine -r 5 'benches/revert.sh revert /tmp/rv3' 'benches/revert.sh cold /tmp/rv3'
#   (or /usr/bin/time -v on each, alternating, as docs/PERFORMANCE.md did)
#   benches/revert.sh teardown /tmp/rv3
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
sandbox=${SANDBOX:-lago-sb}
# LAGO_BIN: a copy of the binary (with its plugin .so files beside it) that
# a build during the benchmark does not replace.
lago_bin=${LAGO_BIN:-$top/target/release/lago}
[ -x "$lago_bin" ] || lago_bin=$top/target/debug/lago

lago() { # lago ARGS in DIR, inside the sandbox
  (cd "$dir" && LAGO__LAGO__LEASE_DIR=$dir/leases LAGO__LAGO__DOMAIN_TYPE=qemu \
    LAGO__INIT__TEMPLATE_STORE=${LAGO_BENCH_STORE:-/var/lib/lago/store} \
    bash "$top/scripts/sandbox/run.sh" "$sandbox" "$lago_bin" "$@")
}

case "${1:-}" in
setup)
  n=${2:?usage: revert.sh setup N DIR}
  dir=${3:?usage: revert.sh setup N DIR}
  mkdir -p "$dir"
  {
    echo "domains:"
    for i in $(seq 0 $((n - 1))); do
      echo "  vm$i: {memory: 256, vcpu: 1, nics: [{net: lago}], disks: [{template_name: lago-tiny, type: template, name: root, dev: vda, format: qcow2}]}"
    done
    echo "nets:"
    echo "  lago: {type: nat, management: true}"
  } >"$dir/LagoInitFile"
  lago init --template-repo-name embedded >/dev/null
  lago start
  lago snapshot bench
  ;;
revert) dir=${2:?usage: revert.sh revert DIR}; lago revert bench ;;
cold) dir=${2:?usage: revert.sh cold DIR}; lago stop && lago start ;;
teardown)
  dir=${2:?usage: revert.sh teardown DIR}
  lago destroy -y >/dev/null || true
  rm -rf "$dir"
  ;;
*)
  echo "usage: revert.sh setup N DIR | revert DIR | cold DIR | teardown DIR" >&2
  exit 2
  ;;
esac
