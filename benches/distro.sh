#!/usr/bin/env bash
# One bring-up of one VM from a real-distribution template (the Debian 12
# templates of scripts/distro/build-debian.sh), to be timed as a whole
# process by a benchmark tool (hyperfine, /usr/bin/time -v, ...):
#
#   benches/distro.sh cloud     lago init && lago start && lago destroy of one
#                               `debian12` VM (cloud-init reads the seed)
#   benches/distro.sh offline   the same with `debian12-nocloud` (init writes
#                               into its disk with virt-customize first)
#
# Runs inside the VM sandbox SANDBOX (default lago-sb, must be up:
# scripts/sandbox/up.sh); LAGO_DISTRO_REPO names the repository (default
# /var/lib/lago/repos/debian12). 768 MiB, 1 vcpu, TCG, one NAT network.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
kind=${1:?usage: distro.sh cloud|offline}
case "$kind" in
cloud) template=debian12 ;;
offline) template=debian12-nocloud ;;
*)
  echo "usage: distro.sh cloud|offline" >&2
  exit 2
  ;;
esac
repo=${LAGO_DISTRO_REPO:-/var/lib/lago/repos/debian12}
sandbox=${SANDBOX:-lago-sb}
work=$(mktemp -d /tmp/lago-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
cat >"$work/LagoInitFile" <<INIT
domains:
  vm0:
    memory: 768
    vcpu: 1
    nics: [{net: lago}]
    disks: [{template_name: $template, type: template, name: root, dev: vda, format: qcow2}]
nets:
  lago: {type: nat, management: true}
INIT
cd "$work"
export LAGO__LAGO__LEASE_DIR=$work/leases LAGO__LAGO__DOMAIN_TYPE=qemu
export LAGO__INIT__TEMPLATE_STORE=${LAGO_BENCH_STORE:-/var/lib/lago/store}
lago=("$top/scripts/sandbox/run.sh" "$sandbox" "$top/target/release/lago")
[ -x "$top/target/release/lago" ] || lago=("$top/scripts/sandbox/run.sh" "$sandbox" "$top/target/debug/lago")
status=0
bash "${lago[@]}" init --template-repo-path "$repo/repo.json" >/dev/null &&
  bash "${lago[@]}" start || status=$?
bash "${lago[@]}" destroy -y >/dev/null
exit $status
