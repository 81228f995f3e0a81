#!/usr/bin/env bash
# The test command: installs what the build and the VM tests need, builds the
# workspace (the lago binary and every plugin .so), runs the unit and
# integration tests, then the end-to-end tests that boot real VMs inside a
# private sandbox (network namespace + own libvirtd), and those of one
# environment over two libvirt hosts in a sandbox pair (pair-up.sh), and
# tears them down.
# Ends with one line: "N passed, N failed" over every test run.
set -euo pipefail
cd "$(dirname "$0")/.."

# libguestfs-tools: the end-to-end test of disk build steps (virt-customize)
bash scripts/install-deps.sh libguestfs-tools
export PATH="$HOME/.cargo/bin:$PATH"

log=$(mktemp /tmp/lago-test.XXXXXX)
sandbox=lago-e2e
# host A (lago's, the default host) and host B (qemu+ssh only, no shared files)
pair_a=lago-mh-a pair_b=lago-mh-b
finish() {
  status=$?
  bash scripts/sandbox/down.sh "$sandbox" >/dev/null 2>&1 || true
  bash scripts/sandbox/pair-down.sh "$pair_a" "$pair_b" >/dev/null 2>&1 || true
  # cargo's "test result:" lines and pytest's "== N passed, N failed in Ts ==".
  awk '/^test result:/ || /^=+ .*(passed|failed).* in [0-9.]+s/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
       END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
  rm -f "$log"
  exit $status
}
trap finish EXIT

cargo build --workspace --all-targets
# The Python package (lago.sdk) into a venv of its own (target/venv).
python=$(bash scripts/python-env.sh | tail -n 1)
# ---- The Python package as pip installs it (issue 19): its wheel, with the
# default plugins inside, in a FRESH venv (target/wheel-venv); the pytest
# suite below runs from it with no LAGO_* variable but the test switches.
wheel_python=$(bash scripts/python-wheel.sh | tail -n 1)
# The YAML differential test (lago-host/tests/yaml_pyyaml.rs) reads with this
# python's PyYAML (LAGO_TEST_PYTHON, given to cargo test alone: the pytest
# suite refuses any LAGO_* variable); under CI=true it fails when it finds none.
LAGO_TEST_PYTHON="$python" cargo test --workspace --exclude lago-e2e --no-fail-fast 2>&1 | tee -a "$log"

# End-to-end: real VMs from the embedded template, in the sandbox.
bash scripts/template/build.sh
bash scripts/sandbox/down.sh "$sandbox" >/dev/null 2>&1 || true
bash scripts/sandbox/up.sh "$sandbox"
bash scripts/sandbox/pair-down.sh "$pair_a" "$pair_b" >/dev/null 2>&1 || true
pair_env=$(bash scripts/sandbox/pair-up.sh "$pair_a" "$pair_b")
pair_b_url=$(printf '%s\n' "$pair_env" | sed -n 's/.*LAGO_PAIR_B_URL=\([^ ]*\).*/\1/p')
pair_b_addr=$(printf '%s\n' "$pair_env" | sed -n 's/.*LAGO_PAIR_B_ADDR=\([^ ]*\).*/\1/p')
# The whole end-to-end suite on lago-tiny (its host key pinned at init);
# on lago-tiny-firstboot (makes its own host key at first boot, learned from
# its console) the tests whose path depends on how the host key is known.
# [lago] warm_start is auto (the default): a VM's first start after init is
# warm where it can (restored from its template's warm image, made once per
# VM shape); e2e_warm, below, checks warm starts themselves.
e2e() { # TEMPLATE CARGO-TEST-ARGS...
  local template=$1
  shift
  echo "== end-to-end tests on template $template"
  bash scripts/sandbox/run.sh "$sandbox" \
    env LAGO_E2E=1 LAGO_E2E_TEMPLATE="$template" \
    cargo test -p lago-e2e --no-fail-fast "$@" 2>&1 | tee -a "$log"
}
e2e lago-tiny --tests -- --test-threads=1 --skip multihost_ --skip warm_ --skip distro_
e2e lago-tiny-firstboot --test e2e --test e2e_ssh --test e2e_ux --test e2e_boot -- --test-threads=1
# One environment over the two hosts of the pair.
bash scripts/sandbox/run.sh "$pair_a" \
  env LAGO_E2E=1 LAGO_E2E_TEMPLATE=lago-tiny \
  LAGO_PAIR_B_URL="$pair_b_url" LAGO_PAIR_B_ADDR="$pair_b_addr" \
  cargo test -p lago-e2e --test e2e_multihost --no-fail-fast -- --test-threads=1 2>&1 | tee -a "$log"
# The Python SDK on real VMs, from the pip-installed wheel (issue 19);
# pytest exits non-zero when a test fails or none was collected (5), which
# fails this script.
bash scripts/sandbox/run.sh "$sandbox" \
  env LAGO_E2E=1 LAGO_E2E_TEMPLATE=lago-tiny \
  "$wheel_python" -m pytest python/tests -p no:cacheprovider -rfE 2>&1 | tee -a "$log"

# The Debian package (issue 20): built from the debug build above, installed
# with apt, an end-to-end run of the installed /usr/bin/lago outside the
# source tree, a normal user against a system-like libvirtd, then removed.
bash scripts/test-package.sh 2>&1 | tee -a "$log"
# Warm starts (issue 22), once: VMs restored from the template's warm image
# (tests/e2e/tests/e2e_warm.rs; its tests are skipped in the loop above).
bash scripts/sandbox/run.sh "$sandbox" \
  env LAGO_E2E=1 LAGO_E2E_TEMPLATE=lago-tiny \
  cargo test -p lago-e2e --test e2e_warm --no-fail-fast -- --test-threads=1 2>&1 | tee -a "$log"
# Real distributions (issue 21): the Debian 12 templates (systemd, OpenSSH,
# cloud-init; and one without cloud-init, bootstrapped offline), built from
# Debian's packages by scripts/distro/build-debian.sh when their inputs
# changed (~4 min; the .debs are cached in /var/cache/lago-distro), then
# tests/e2e/tests/e2e_distro.rs on them (its tests are skipped in the loop
# above).
bash scripts/distro/test.sh "$sandbox" 2>&1 | tee -a "$log"
