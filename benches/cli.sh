#!/usr/bin/env bash
# CLI start-up cost of lago: wall time and peak memory of commands that every
# user pays for on each call, with the default (shipped) plugins.
#
#   benches/cli.sh [RUNS]        (default 50 runs per command)
#
# Builds the release binaries, then runs each command RUNS times (after one
# warm-up run, which also writes the plugin index) from an empty folder with
# an empty HOME and no LAGO_* variables, and prints a Markdown table: median /
# min / max wall milliseconds (process start to exit, as seen from this
# shell, so a fork+exec of bash is included) and peak RSS (max of 5 runs,
# /usr/bin/time's maximum resident set size). "cold" rows run with
# LAGO_PLUGIN_INDEX=0: every plugin library is opened, as on a first run.
set -euo pipefail

runs=${1:-50}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --release --quiet -p lago-host -p lago-provider-local-libvirt \
  -p lago-provider-ssh -p lago-service-systemd -p lago-service-sysvinit
bin=$root/target/release/lago

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cd "$scratch"
clean_env=(env -u LAGO_PLUGIN_PATH -u LAGO_LOGLEVEL HOME="$scratch")

now_ns() { date +%s%N; }

measure() {
  local label=$1; shift
  "${clean_env[@]}" "$@" >/dev/null 2>&1 || true # warm-up (page cache)
  local times=() t0 t1
  for ((i = 0; i < runs; i++)); do
    t0=$(now_ns)
    "${clean_env[@]}" "$@" >/dev/null 2>&1 || true
    t1=$(now_ns)
    times+=($(( (t1 - t0) / 1000 )))
  done
  local sorted
  sorted=$(printf '%s\n' "${times[@]}" | sort -n)
  local min max med
  min=$(head -1 <<<"$sorted")
  max=$(tail -1 <<<"$sorted")
  med=$(sed -n "$(( (runs + 1) / 2 ))p" <<<"$sorted")
  local rss=0 r
  for ((i = 0; i < 5; i++)); do
    r=$("${clean_env[@]}" /usr/bin/time -f "%M" "$@" 2>&1 >/dev/null | tail -1 || true)
    (( r > rss )) && rss=$r
  done
  awk -v l="$label" -v a="$med" -v b="$min" -v c="$max" -v m="$rss" 'BEGIN {
    printf "| `%s` | %.1f | %.1f | %.1f | %.1f |\n", l, a / 1000, b / 1000, c / 1000, m / 1024 }'
}

echo "lago $("$bin" --version | cut -d' ' -f2), $(nproc) cores, $runs runs per command, release build"
echo
echo '| command | median ms | min ms | max ms | peak RSS MiB |'
echo '|---|---|---|---|---|'
measure 'lago --help' "$bin" --help
measure 'lago plugins' "$bin" plugins
measure 'lago -f json plugins' "$bin" -f json plugins
measure 'lago plugins (cold: no index)' env LAGO_PLUGIN_INDEX=0 "$bin" plugins
measure 'lago status (no workdir: error exit)' "$bin" status
