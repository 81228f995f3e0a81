#!/usr/bin/env bash
# Makes the Python environment of the SDK: a venv (default target/venv, or
# $LAGO_VENV) with maturin and pytest from PyPI, and the `lago` package built
# from python/ installed into it (`maturin develop`). Never touches the
# system Python. Prints the venv's python on its last line.
#
# Usage: scripts/python-env.sh        then: target/venv/bin/python -c 'from lago import sdk'
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

venv=${LAGO_VENV:-$PWD/target/venv}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check 'maturin>=1.5,<2' 'pytest>=7'
# PyYAML: lago-host/tests/yaml_pyyaml.rs compares lago's YAML reader with it.
# Pinned to the merge-key semantics Lago's users had (PyYAML 3.x to 6.0.3):
# 6.0.4 de-duplicates merged keys by the identity of the key's str object, so
# `<<: [*a, *b]` gives *a's value or *b's depending on string interning.
"$venv/bin/python" -m pip install -q --disable-pip-version-check 'pyyaml==6.0.3'
VIRTUAL_ENV="$venv" "$venv/bin/maturin" develop -q -m python/Cargo.toml >&2
echo "$venv/bin/python"
