"""Exceptions and result types of the lago SDK (raised and built by
``lago._native``)."""

from collections import namedtuple

#: What ``VM.ssh`` returns, as Lago: the exit code (int) and the decoded
#: standard output and error (str, invalid UTF-8 replaced).
CommandStatus = namedtuple("CommandStatus", ["code", "out", "err"])


class LagoError(Exception):
    """Base of every lago error. ``str(e)`` is the one-line message the
    ``lago`` CLI prints for the same failure."""


class LagoNotFoundError(LagoError, LookupError):
    """No such VM, network, workdir or prefix."""


class LagoBadInputError(LagoError, ValueError):
    """Bad input or state the caller can fix: a malformed init file, an
    existing prefix, a missing local file, a prefix not initialized."""


class LagoVMNotRunningError(LagoError):
    """The VM is not running, so it cannot be reached over SSH."""


class LagoSSHError(LagoError):
    """SSH to a running VM failed (connect, authentication, host key,
    transfer)."""


class LagoProviderError(LagoError):
    """A vm-provider, vm-type or vm-service plugin refused or failed."""


class LagoInternalError(LagoError):
    """A failure of lago or the system (I/O, a plugin panic)."""
