#!/usr/bin/env bash
# `lago status` on a stored 50-VM prefix, whole process (issue 12's aim: under
# 20 ms), with the shipped plugins and libvirt's in-process test:///default
# driver standing in for the hypervisor (every VM `down`).
#
#   benches/status.sh [RUNS]        (default 30 runs per row)
#
# Builds the release binaries, makes the prefix with the env_model bench
# (`make-prefix`: 50 VMs on 3 networks, no provider work), runs one warm-up
# (page cache, plugin index), then RUNS runs of each row, and prints a
# Markdown table: wall and CPU (user + system) milliseconds as min / median /
# max, and the largest peak RSS.
set -euo pipefail

runs=${1:-30}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --release --quiet -p lago-host -p lago-provider-local-libvirt \
  -p lago-provider-ssh -p lago-service-systemd -p lago-service-sysvinit -p lago-out-dot
cargo bench -p lago-host --bench env_model --no-run --quiet 2>/dev/null || true
bench=$(ls -t target/release/deps/env_model-* | grep -v '\.d$' | head -1)
bin=$root/target/release/lago

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/proj" "$scratch/home"
"$bench" make-prefix "$scratch/proj" 50 3
cd "$scratch/proj"
clean_env=(env -u LAGO_PLUGIN_PATH -u LAGO_LOGLEVEL HOME="$scratch/home"
  LAGO_LEASE_DIR="$scratch/proj/leases" LAGO_LIBVIRT_URL=test:///default)

# One row: RUNS runs of the command after one warm-up; wall time around
# fork/exec/wait, CPU (user + system) and peak RSS from wait4's rusage
# (microsecond resolution, unlike /usr/bin/time's 10 ms).
measure() {
  local label=$1; shift
  "${clean_env[@]}" python3 - "$runs" "$label" "$@" <<'PY'
import os, subprocess, sys, time
runs, label, argv = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
def once():
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    wall = (time.perf_counter() - t0) * 1e3
    return wall, (ru.ru_utime + ru.ru_stime) * 1e3, ru.ru_maxrss / 1024
once()  # warm-up: page cache, plugin index
rows = [once() for _ in range(runs)]
def mmm(xs):
    xs = sorted(xs)
    return f"{xs[0]:.1f} / {xs[(len(xs) - 1) // 2]:.1f} / {xs[-1]:.1f}"
print(f"| `{label}` | {mmm(r[0] for r in rows)} | {mmm(r[1] for r in rows)} | {max(r[2] for r in rows):.1f} |")
PY
}

echo "lago $("$bin" --version | cut -d' ' -f2), $(nproc) cores, $runs runs per row, release build, 50 VMs / 3 networks"
echo
echo '| command | wall ms (min / median / max) | CPU ms (min / median / max) | peak RSS MiB |'
echo '|---|---|---|---|'
measure 'lago status -f json' "$bin" status -f json
measure 'lago status' "$bin" status
measure 'lago -f dot status' "$bin" -f dot status
measure 'lago list (no plugin library: the floor)' "$bin" list
