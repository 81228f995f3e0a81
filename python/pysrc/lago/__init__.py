"""lago: reproducible multi-VM test environments (Lago's SDK, over the
Rust library of the ``lago`` CLI).

    from lago import sdk
    env = sdk.init(config='LagoInitFile', workdir='/tmp/wd')
    env.start()
    vm = env.get_vms()['vm01']
    vm.ssh(['hostname', '-f'])   # CommandStatus(code=0, out='vm01\\n', err='')
    env.destroy()
"""

from ._core import (
    CommandStatus,
    LagoBadInputError,
    LagoError,
    LagoInternalError,
    LagoNotFoundError,
    LagoProviderError,
    LagoSSHError,
    LagoVMNotRunningError,
)

__all__ = [
    "CommandStatus",
    "LagoBadInputError",
    "LagoError",
    "LagoInternalError",
    "LagoNotFoundError",
    "LagoProviderError",
    "LagoSSHError",
    "LagoVMNotRunningError",
    "sdk",
]
