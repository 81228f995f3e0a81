"""Lago's ``lago.plugins.vm`` exceptions, and ``VM.extract_paths``'s work."""

import os

from .._core import (
    LagoBadInputError,
    LagoError,
    LagoException,
    LagoNotFoundError,
    LagoVMNotRunningError,
)

__all__ = [
    "VMError",
    "ExtractPathError",
    "ExtractPathNoPathError",
    "LagoVMNotRunningError",
    "LagoCopyFilesToVMError",
    "LagoCopyFilesFromVMError",
]


class VMError(LagoError):
    """Lago's base of VM errors (a :class:`lago.LagoError`, so a
    :class:`LagoException` as in Lago)."""


class ExtractPathError(VMError):
    """Copying a path out of a VM failed."""


class ExtractPathNoPathError(VMError):
    """A path to copy out of a VM does not exist there."""

    def __init__(self, err):
        super().__init__("Failed to extract files: {}".format(err))


class LagoCopyFilesToVMError(LagoBadInputError):
    """A copy into a VM refused (e.g. the local file is missing): Lago's
    class, a :class:`lago.LagoBadInputError`."""


class LagoCopyFilesFromVMError(LagoNotFoundError):
    """A copy out of a VM of a path missing there: Lago's class, a
    :class:`lago.LagoNotFoundError`."""


def _extract_paths(vm, paths, ignore_nopath):
    """``VM.extract_paths``: each ``(guest path, host path)`` copied out of
    the running ``vm``; into the host path when it is a folder (as ``scp
    -r``), else to it."""
    for guest, host in paths:
        host = os.fspath(host)
        probe = vm.ssh(["test", "-e", guest])
        if probe.code != 0:
            if ignore_nopath:
                continue
            raise ExtractPathNoPathError("VM {}: {}".format(vm.name(), guest))
        dest = host
        if os.path.isdir(host):
            dest = os.path.join(host, os.path.basename(guest.rstrip("/")))
        try:
            vm.copy_from(guest, dest, recursive=True)
        except LagoVMNotRunningError:
            raise
        except LagoException as e:
            raise ExtractPathError(
                "VM {}: cannot copy {} to {}: {}".format(vm.name(), guest, dest, e)
            ) from e
