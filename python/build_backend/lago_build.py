"""The PEP 517 build backend of the ``lago`` package: maturin's, after
putting the default plugin libraries into the package.

``pip install ./python`` and ``pip wheel ./python`` fetch maturin (the
``requires`` of pyproject.toml) and call this module. Before maturin builds
the extension module and packs the wheel, ``cargo build`` builds the
default plugins (local-libvirt, ssh, systemd, sysvinit, dot) in the same
workspace and profile, and their ``liblago_*.so`` files are copied into
``pysrc/lago/plugins`` (beside Lago's ``lago.plugins`` modules), which the
wheel carries and lago searches
(docs/sdk.md). Everything else is maturin's own backend.

The cargo profile: ``$LAGO_WHEEL_PROFILE`` (default ``release``, as
maturin's; CI uses ``dev`` to reuse its debug build), passed to maturin too
unless ``$MATURIN_PEP517_ARGS`` already says how to build.
"""

import json
import os
import pathlib
import shutil
import subprocess

import maturin
from maturin import (  # noqa: F401 (the backend's other hooks, as maturin has them)
    build_sdist,
    get_requires_for_build_editable,
    get_requires_for_build_sdist,
    get_requires_for_build_wheel,
    prepare_metadata_for_build_editable,
    prepare_metadata_for_build_wheel,
)

PACKAGE = pathlib.Path(__file__).resolve().parents[1]
PLUGINS = PACKAGE / "pysrc" / "lago" / "plugins"
#: The cargo packages of the plugins the wheel carries.
PLUGIN_PACKAGES = [
    "lago-provider-local-libvirt",
    "lago-provider-ssh",
    "lago-service-systemd",
    "lago-service-sysvinit",
    "lago-out-dot",
]


def _profile():
    profile = os.environ.get("LAGO_WHEEL_PROFILE", "release")
    if not os.environ.get("MATURIN_PEP517_ARGS"):
        os.environ["MATURIN_PEP517_ARGS"] = "--profile {}".format(profile)
    return profile


def _bundle_plugins():
    """``cargo build`` the plugins and copy their libraries into the
    package's ``plugins`` folder (replacing what an earlier build left)."""
    cmd = ["cargo", "build", "--profile", _profile(), "--message-format=json-render-diagnostics"]
    for p in PLUGIN_PACKAGES:
        cmd += ["-p", p]
    out = subprocess.run(cmd, cwd=PACKAGE, stdout=subprocess.PIPE, check=True, text=True)
    libraries = []
    for line in out.stdout.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("reason") != "compiler-artifact" or "cdylib" not in msg["target"]["kind"]:
            continue
        libraries += [f for f in msg["filenames"] if f.endswith(".so")]
    names = {pathlib.Path(f).name for f in libraries}
    expected = {"lib" + p.replace("-", "_") + ".so" for p in PLUGIN_PACKAGES}
    if not names >= expected:
        raise RuntimeError(
            "cargo built {} but the wheel needs {}".format(sorted(names), sorted(expected))
        )
    # The folder is also the Python package `lago.plugins`: only the
    # libraries an earlier build copied are replaced.
    for old in PLUGINS.glob("liblago_*.so"):
        old.unlink()
    for f in libraries:
        shutil.copy2(f, PLUGINS / pathlib.Path(f).name)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _bundle_plugins()
    return maturin.build_wheel(wheel_directory, config_settings, metadata_directory)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    _bundle_plugins()
    return maturin.build_editable(wheel_directory, config_settings, metadata_directory)
