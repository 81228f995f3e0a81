"""lago: reproducible multi-VM test environments (Lago's SDK, over the
Rust library of the ``lago`` CLI).

    from lago import sdk
    env = sdk.init(config='LagoInitFile', workdir='/tmp/wd')
    env.start()
    vm = env.get_vms()['vm01']
    vm.ssh(['hostname', '-f'])   # CommandStatus(code=0, out=b'vm01\\n', err=b'')
    env.destroy()

What the package needs on the machine (checked here, at import): libvirt's
client library (``libvirt.so.0``, Debian's ``libvirt0``) and QEMU's
``qemu-img`` (``qemu-utils``); see docs/sdk.md.
"""

import atexit
import ctypes.util
import os
import shutil


def _check_machine():
    """One ImportError naming everything the wheel needs and does not find."""
    missing = []
    if ctypes.util.find_library("virt") is None:
        missing.append(
            "libvirt's client library libvirt.so.0 (Debian/Ubuntu: apt install libvirt0; "
            "Fedora/EL: dnf install libvirt-libs)"
        )
    if shutil.which("qemu-img") is None:
        missing.append(
            "qemu-img on PATH (Debian/Ubuntu: apt install qemu-utils; Fedora/EL: dnf install qemu-img)"
        )
    if missing:
        raise ImportError(
            "lago cannot run on this machine; it needs " + " and ".join(missing)
        )


_check_machine()

from . import _native  # noqa: E402

# The default plugins the wheel carries (liblago_*.so), searched after
# $LAGO_PLUGIN_PATH, ~/.local/lib/lago/plugins and /usr/lib/lago/plugins.
_native._set_plugin_dir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "plugins"))

# At exit, open environments close their SSH sessions and lago stops
# logging before Python finalizes.
atexit.register(_native._at_exit)

# The Rust-native name of Lago's ``Env.export_vms``: the same method.
_native.Env.export = _native.Env.export_vms

from ._core import (  # noqa: E402
    CommandStatus,
    LagoBadInputError,
    LagoError,
    LagoException,
    LagoInternalError,
    LagoNotFoundError,
    LagoProviderError,
    LagoSSHError,
    LagoUserException,
    LagoVMNotRunningError,
)

__all__ = [
    "CommandStatus",
    "LagoBadInputError",
    "LagoError",
    "LagoException",
    "LagoInternalError",
    "LagoNotFoundError",
    "LagoProviderError",
    "LagoSSHError",
    "LagoUserException",
    "LagoVMNotRunningError",
    "sdk",
]
