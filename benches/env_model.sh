#!/usr/bin/env bash
# Benchmark of the environment model (issue 3), written into
# docs/PERFORMANCE.md between the env-model markers.
#   plan:   `lago init`'s library path for 1,000 VMs on 8 networks (parse,
#           check, lease, plan, 1,001 SSH keys, store, syncfs, marker), no
#           provider work; whole process under /usr/bin/time.
#   status: `lago status -f json` on a stored 50-VM prefix, whole processes
#           (providers asked through libvirt's test:///default driver).
# Usage: benches/env_model.sh [RUNS]   (TMPDIR picks the filesystem measured)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-9}
cargo build --release --workspace --quiet
cargo bench -p lago-host --bench env_model --no-run --quiet 2>/dev/null || true
bench=$(ls -t target/release/deps/env_model-* | grep -v '\.d$' | head -1)
lago=target/release/lago

plan_runs=()
for _ in $(seq "$runs"); do
    out=$(/usr/bin/time -f "TIME %e %M" "$bench" plan 1 keep 2>&1)
    rm -rf "$(sed -n 's/^kept //p' <<<"$out")"
    ms=$(sed -n 's/.*median \([0-9]*\) ms.*/\1/p' <<<"$out")
    rss=$(sed -n 's/^TIME [0-9.]* \([0-9]*\)$/\1/p' <<<"$out")
    wall=$(sed -n 's/^TIME \([0-9.]*\) [0-9]*$/\1/p' <<<"$out")
    plan_runs+=("$ms $rss $wall")
done
med() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
plan_ms=$(printf '%s\n' "${plan_runs[@]}" | awk '{print $1}' | med)
plan_min=$(printf '%s\n' "${plan_runs[@]}" | awk '{print $1}' | sort -n | head -1)
plan_max=$(printf '%s\n' "${plan_runs[@]}" | awk '{print $1}' | sort -n | tail -1)
plan_rss=$(printf '%s\n' "${plan_runs[@]}" | awk '{print $2}' | med)
plan_wall=$(printf '%s\n' "${plan_runs[@]}" | awk '{print $3}' | med)
status_line=$("$bench" status "$lago" "$((runs * 3))")
shm_line="(no /dev/shm)"
if [ -d /dev/shm ]; then
    shm_line=$(TMPDIR=/dev/shm "$bench" plan "$runs")
fi
fs=$(df -T "${TMPDIR:-/tmp}" | awk 'NR==2 {print $2}')

section=$(cat <<MD
<!-- env-model:begin -->
## Environment model (init file, plan, prefix, status)

Measured by \`benches/env_model.sh\` on $(date -u +%Y-%m-%d), $(nproc) cores, temp folder on ${fs}.

| what | median | spread | peak memory |
|---|---|---|---|
| plan + store, 1,000 VMs on 8 nets (no provider work), in process | ${plan_ms} ms | ${plan_min}-${plan_max} ms over ${runs} runs | ${plan_rss} KiB (whole process) |
| the same, whole process (start, init, exit) | ${plan_wall} s | | |
| \`lago status -f json\`, 50 VMs | see line below | | |

\`\`\`
${status_line}
\`\`\`

The same plan with its prefix on tmpfs, which leaves lago's own CPU cost:

\`\`\`
${shm_line}
\`\`\`

Where the time goes: on ext4 the plan's time is the kernel creating the
prefix's ~2,000 files (one JSON file per VM and per net, one host key per VM)
and one \`syncfs\` before the \`initialized\` marker; it swings with the
disk's load (other processes' writes are flushed by the same \`syncfs\`).
Parsing, checking, planning, 1,001 ed25519 keys and JSON encoding take the
tmpfs figure. \`status\`: reading the 50-VM prefix and building the tree is
the in-process line; the rest of the whole-process figure is process start,
loading the provider plugin library and asking it for 50 VM states.

Aims (issue 3): under 1 s and 100 MB for the plan, under 20 ms for status.
<!-- env-model:end -->
MD
)
doc=docs/PERFORMANCE.md
[ -f "$doc" ] || printf '# Performance\n\nFigures measured by the scripts under benches/.\n' > "$doc"
python3 - "$doc" "$section" <<'PY'
import re, sys
path, section = sys.argv[1], sys.argv[2]
text = open(path).read()
pat = re.compile(r"<!-- env-model:begin -->.*?<!-- env-model:end -->", re.S)
text = pat.sub(lambda m: section, text) if pat.search(text) else text.rstrip("\n") + "\n\n" + section + "\n"
open(path, "w").write(text)
PY
echo "$section"
