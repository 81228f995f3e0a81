#!/usr/bin/env bash
# The test command: installs what the build and the VM tests need, builds the
# workspace (the lago binary and every plugin .so), runs the unit and
# integration tests, then the end-to-end tests that boot real VMs inside a
# private sandbox (network namespace + own libvirtd), and tears it down.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
export PATH="$HOME/.cargo/bin:$PATH"

cargo build --workspace --all-targets
cargo test --workspace --exclude lago-e2e --no-fail-fast

# End-to-end: real VMs from the embedded template, in the sandbox.
bash scripts/template/build.sh
sandbox=lago-e2e
bash scripts/sandbox/down.sh "$sandbox" >/dev/null 2>&1 || true
trap 'bash scripts/sandbox/down.sh "$sandbox"' EXIT
bash scripts/sandbox/up.sh "$sandbox"
bash scripts/sandbox/run.sh "$sandbox" \
  env LAGO_E2E=1 cargo test -p lago-e2e -- --test-threads=1
