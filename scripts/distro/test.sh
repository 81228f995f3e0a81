#!/usr/bin/env bash
# The real-distribution end-to-end tests (tests/e2e/tests/e2e_distro.rs):
# builds the Debian 12 templates when their inputs changed (else does
# nothing: scripts/distro/build-debian.sh), then runs the tests once inside
# sandbox NAME (already up), with LAGO_DISTRO_REPO naming the repository.
# Prints how long each part took.
#
# Usage: scripts/distro/test.sh SANDBOX
#   LAGO_DISTRO_REPO: the repository (default /var/lib/lago/repos/debian12)
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -eq 1 ] || { echo "usage: $0 SANDBOX" >&2; exit 2; }
repo=${LAGO_DISTRO_REPO:-/var/lib/lago/repos/debian12}
t0=$(date +%s)
# libguestfs-tools: virt-customize, the offline bootstrap of debian12-nocloud
bash scripts/install-deps.sh libguestfs-tools
bash scripts/distro/build-debian.sh "$repo"
t1=$(date +%s)
echo "== end-to-end tests on the Debian 12 templates in $repo"
bash scripts/sandbox/run.sh "$1" env LAGO_E2E=1 LAGO_DISTRO_REPO="$repo" \
  cargo test -p lago-e2e --test e2e_distro --no-fail-fast -- --test-threads=1
t2=$(date +%s)
echo "distro: templates $((t1 - t0)) s, tests $((t2 - t1)) s"
