#!/usr/bin/env bash
# Warm starts against cold boots and the raw floor (issue 22), in one run:
#
#   benches/warm.sh [-r ROUNDS] [-n "1 3 10"] [-s SANDBOX]
#
# For each environment size N (VMs of 256 MiB, 1 vcpu, TCG, one NAT network,
# the embedded template), ROUNDS rounds of three bring-ups, interleaved (the
# order turns each round, so a drift of the machine's speed hits all three):
#
#   floor  tests/sandbox/floor.sh -n N: plain qemu-img + virsh + ssh, from
#          the network's creation to every VM answering SSH (cold boots)
#   cold   `lago start --cold` of an environment just `init`ed
#   warm   `lago start` of an environment just `init`ed, its warm image made
#
# Timed: `lago start` as a whole process (networks, VMs, every VM answering
# SSH with its pinned key); init and destroy are not timed. Before the rounds
# the warm image is made once by a warm `lago start` of one VM into a template
# store of this run (timed: the one-off cost). After each warm start every VM
# must show `last start: warm` in `lago status` (else the run fails: a cold
# fallback would pass for a warm figure).
#
# Prints a Markdown table: medians (min-max) in seconds, ratios to the floor
# of the same run, lago's own peak RSS and CPU seconds during `start`
# (`/usr/bin/time`), and the QEMU processes' resident memory summed after the
# start. Needs root, the release build (cargo build --release --workspace),
# the embedded template (scripts/template/build.sh) and a sandbox
# (scripts/sandbox/up.sh SANDBOX, default lago-sb).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
rounds=5
sizes="1 3 10"
sandbox=${SANDBOX:-lago-sb}
while getopts "r:n:s:h" opt; do
  case "$opt" in
  r) rounds=$OPTARG ;;
  n) sizes=$OPTARG ;;
  s) sandbox=$OPTARG ;;
  h) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) exit 2 ;;
  esac
done
lago_bin=$top/target/release/lago
[ -x "$lago_bin" ] || { echo "warm.sh: build it first: cargo build --release --workspace" >&2; exit 1; }

work=$(mktemp -d /tmp/lago-warm-bench.XXXXXX)
cleanup() {
  for d in "$work"/env-*; do
    [ -d "$d/.lago" ] && (cd "$d" && lago destroy -y >/dev/null 2>&1) || true
  done
  rm -rf "$work"
}
# in_sandbox CMD...: CMD in the sandbox with this run's lago settings
in_sandbox() {
  bash "$top/scripts/sandbox/run.sh" "$sandbox" env LAGO__LAGO__LEASE_DIR="$work/leases" \
    LAGO__LAGO__DOMAIN_TYPE=qemu LAGO__INIT__TEMPLATE_STORE="$work/store" \
    LAGO__LAGO__WARM_START=auto "$@"
}
lago() { in_sandbox "$lago_bin" "$@"; }
trap cleanup EXIT
mkdir -p "$work/store" "$work/leases"
chmod 2775 "$work/store"

initfile() { # N
  echo "domains:"
  for i in $(seq 0 $(($1 - 1))); do
    cat <<VM
  vm$i:
    memory: 256
    vcpu: 1
    nics: [{net: lago}]
    disks: [{template_name: lago-tiny, type: template, name: root, dev: vda, format: qcow2}]
VM
  done
  echo "nets:"
  echo "  lago: {type: nat, management: true}"
}

# qemu_rss_mib: the resident memory of every QEMU process, summed (MiB)
qemu_rss_mib() {
  ps -C qemu-system-x86_64 -o rss= 2>/dev/null | awk '{ s += $1 } END { printf "%.0f", s / 1024 }'
}

# one_lago KIND N: init, a timed start, checks, destroy; prints
# "SECONDS PEAK_KIB CPU_SECONDS QEMU_RSS_MIB"
one_lago() {
  local kind=$1 n=$2
  local dir=$work/env-$kind-$n flags=()
  if [ "$kind" = cold ]; then flags=(--cold); fi
  rm -rf "$dir" && mkdir -p "$dir" && initfile "$n" >"$dir/LagoInitFile"
  (cd "$dir" && lago init --template-repo-name embedded >/dev/null 2>&1)
  local t0 t1
  t0=$(date +%s.%N)
  (cd "$dir" && in_sandbox /usr/bin/time -f '%M %U %S' -o "$dir/time" \
    "$lago_bin" start "${flags[@]}" >"$dir/start.log" 2>&1) ||
    { echo "warm.sh: lago start ($kind, $n VMs) failed:" >&2; tail -20 "$dir/start.log" >&2; exit 1; }
  t1=$(date +%s.%N)
  local rss
  rss=$(qemu_rss_mib)
  local got
  got=$(cd "$dir" && lago status 2>/dev/null | grep -c "last start: $kind" || true)
  if [ "$got" != "$n" ]; then
    echo "warm.sh: $kind start of $n VMs: $got VMs show 'last start: $kind'" >&2
    (cd "$dir" && lago status) >&2 || true
    grep "cold start" "$dir"/.lago/current/logs/lago.log >&2 || true
    exit 1
  fi
  (cd "$dir" && lago destroy -y >/dev/null 2>&1)
  read -r peak user sys <"$dir/time"
  awk -v a="$t0" -v b="$t1" -v p="$peak" -v u="$user" -v s="$sys" -v r="$rss" \
    'BEGIN { printf "%.2f %d %.2f %s\n", b - a, p, u + s, r }'
}

# one_floor N: prints "SECONDS - - QEMU_RSS_MIB" (floor.sh's own figure)
one_floor() {
  local out
  out=$(bash "$top/tests/sandbox/floor.sh" -s "$sandbox" -n "$1" -b sata 2>&1) ||
    { echo "warm.sh: floor.sh -n $1 failed:" >&2; echo "$out" | tail -20 >&2; exit 1; }
  echo "$out" | sed -n 's/.*every VM answers ssh: \([0-9.]*\) s.*/\1 - - -/p'
}

# The warm image, once: a warm start of one VM into this run's store.
echo "warm.sh: making the warm image (one warm start of 1 VM, first of its shape)" >&2
read -r make_s make_peak _ _ <<<"$(one_lago warm 1)"

stats() { # FILE COLUMN: "median (min-max)" of that column
  awk -v c="$2" '{ print $c }' "$1" | sort -n | awk '
    { v[NR] = $1 }
    END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
          printf "%.2f (%.2f-%.2f)", m, v[1], v[NR] }'
}
median() { # FILE COLUMN
  awk -v c="$2" '{ print $c }' "$1" | sort -n | awk '
    { v[NR] = $1 } END { printf "%.3f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

kinds=(floor cold warm)
for n in $sizes; do
  : >"$work/floor-$n" && : >"$work/cold-$n" && : >"$work/warm-$n" && : >"$work/ratio-$n"
  for r in $(seq 1 "$rounds"); do
    for k in 0 1 2; do
      kind=${kinds[$(((k + r) % 3))]}
      echo "warm.sh: $n VMs, round $r/$rounds: $kind" >&2
      if [ "$kind" = floor ]; then one_floor "$n" >>"$work/floor-$n"; else one_lago "$kind" "$n" >>"$work/$kind-$n"; fi
    done
    # the ratios of this round (pair by pair)
    f=$(tail -1 "$work/floor-$n" | cut -d' ' -f1)
    c=$(tail -1 "$work/cold-$n" | cut -d' ' -f1)
    w=$(tail -1 "$work/warm-$n" | cut -d' ' -f1)
    awk -v f="$f" -v c="$c" -v w="$w" 'BEGIN { printf "%.3f %.3f\n", c / f, w / f }' >>"$work/ratio-$n"
  done
done

echo
echo "| VMs | raw floor (s) | lago start --cold (s) | lago start, warm (s) | cold / floor | warm / floor | lago peak RSS cold / warm (MiB) | lago CPU cold / warm (s) | QEMU RSS after start, cold / warm (MiB) |"
echo "|---|---|---|---|---|---|---|---|---|"
for n in $sizes; do
  printf '| %s | %s | %s | %s | %.2fx | %.2fx | %.0f / %.0f | %.2f / %.2f | %.0f / %.0f |\n' "$n" \
    "$(stats "$work/floor-$n" 1)" "$(stats "$work/cold-$n" 1)" "$(stats "$work/warm-$n" 1)" \
    "$(median "$work/ratio-$n" 1)" "$(median "$work/ratio-$n" 2)" \
    "$(awk '{ print $2 / 1024 }' "$work/cold-$n" | sort -n | tail -1)" \
    "$(awk '{ print $2 / 1024 }' "$work/warm-$n" | sort -n | tail -1)" \
    "$(median "$work/cold-$n" 3)" "$(median "$work/warm-$n" 3)" \
    "$(median "$work/cold-$n" 4)" "$(median "$work/warm-$n" 4)"
done
echo
printf 'Making the warm image (the first warm start of the shape, 1 VM, all included): %s s; lago peak RSS %.0f MiB.\n' \
  "$make_s" "$(awk -v p="$make_peak" 'BEGIN { print p / 1024 }')"
echo "Medians of $rounds rounds, min-max in brackets; ratios are medians of each round's own ratio."
