#!/usr/bin/env bash
# lago's main job: build lago and the embedded template, bring up the example
# environment (examples/LagoInitFile: 2 networks, 3 VMs), run a command in each
# VM, show its status, and tear it all down.
#
# Uses the host's running libvirtd when there is one; otherwise starts a
# private one in a sandbox (network namespace + own libvirtd), as the tests do.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bash scripts/install-deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --workspace
bash scripts/template/build.sh
lago=$root/target/debug/lago

# Where libvirt runs: a VM sandbox that is already up (its libvirtd's socket
# is visible here, but its VMs' networks live in its namespace), else the
# host's own libvirtd, else a sandbox of our own.
run=()
sandbox=""
own_sandbox=""
work=""
destroyed=""
cleanup() {
  set +x
  cd "$root"
  if [ -n "$work" ]; then
    # After a failure on the way: take down whatever was created.
    [ -n "$destroyed" ] || (cd "$work" && "${run[@]}" "$lago" destroy -y >/dev/null 2>&1) || true
    rm -rf "$work"
  fi
  if [ -n "$own_sandbox" ]; then bash "$root/scripts/sandbox/down.sh" "$sandbox" >/dev/null; fi
}
trap cleanup EXIT
for pidfile in /run/lago-sandbox/*/libvirtd.pid; do
  [ -e "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null || continue
  sandbox=$(basename "$(dirname "$pidfile")")
  echo "using the running VM sandbox $sandbox"
  break
done
if [ -z "$sandbox" ] && ! virsh -c qemu:///system version >/dev/null 2>&1; then
  sandbox=lago-main
  own_sandbox=1
  bash scripts/sandbox/down.sh "$sandbox" >/dev/null 2>&1 || true
  bash scripts/sandbox/up.sh "$sandbox" >/dev/null
fi
[ -z "$sandbox" ] || run=(bash "$root/scripts/sandbox/run.sh" "$sandbox")

work=$(mktemp -d /tmp/lago-main.XXXXXX)
cp examples/LagoInitFile "$work/"
cd "$work"
export LAGO__LAGO__DOMAIN_TYPE=${LAGO__LAGO__DOMAIN_TYPE:-qemu}


set -x
"${run[@]}" "$lago" init --template-repo-name embedded
"${run[@]}" "$lago" start
for vm in vm0 vm1 vm2; do
  "${run[@]}" "$lago" shell "$vm" 'echo "$(hostname): kernel $(uname -r), up $(cut -d" " -f1 /proc/uptime)s"'
done
"${run[@]}" "$lago" shell vm1 ping -c 1 -W 2 vm0.lago.local
"${run[@]}" "$lago" status
"${run[@]}" "$lago" destroy -y
destroyed=1
