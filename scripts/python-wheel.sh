#!/usr/bin/env bash
# The Python package as a user gets it: builds the wheel of python/ with pip
# (PEP 517: pip fetches maturin; build_backend/lago_build.py puts the
# default plugins into the package), then makes a FRESH venv (default
# target/wheel-venv, or $1) and pip-installs that wheel and the test tools
# into it. Prints the venv's python on its last line.
#
# The wheel is built with cargo's dev profile (LAGO_WHEEL_PROFILE=dev) so CI
# reuses its debug build; a release wheel is `pip wheel ./python` alone.
#
# Usage: scripts/python-wheel.sh [VENV]   then: VENV/bin/python -m pytest python/tests
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

venv=${1:-$PWD/target/wheel-venv}
wheels=$PWD/target/wheels
rm -rf "$venv" "$wheels"
python3 -m venv "$venv"
LAGO_WHEEL_PROFILE=${LAGO_WHEEL_PROFILE:-dev} \
  "$venv/bin/python" -m pip wheel -q --disable-pip-version-check --no-deps -w "$wheels" ./python >&2
wheel=$(ls "$wheels"/lago-*.whl)
"$venv/bin/python" -m pip install -q --disable-pip-version-check "$wheel" 'pytest>=7' pyyaml >&2
echo "$venv/bin/python"
