"""Exceptions and result types of the lago SDK (raised and built by
``lago._native``), with Lago's names and hierarchy: every lago error is a
:class:`LagoException`, and the ones the caller can fix are
:class:`LagoUserException` (Lago's ``lago.utils`` classes)."""

from collections import namedtuple

_CommandStatus = namedtuple("CommandStatus", ["code", "out", "err"])


class CommandStatus(_CommandStatus):
    """What ``VM.ssh`` and ``lago.utils.run_command`` return, as Lago: a named
    tuple ``(code, out, err)`` with ``out`` and ``err`` as **bytes** (suites
    call ``res.out.decode()``). Lago's truth value: true when the command
    *failed* (``bool(code)``). ``out_text`` / ``err_text`` give the output
    decoded as UTF-8 (invalid bytes replaced)."""

    __slots__ = ()

    def __bool__(self):
        return bool(self.code)

    @staticmethod
    def _text(data):
        if isinstance(data, bytes):
            return data.decode("utf-8", "replace")
        return "" if data is None else str(data)

    @property
    def out_text(self):
        """Standard output as text (str)."""
        return self._text(self.out)

    @property
    def err_text(self):
        """Standard error as text (str)."""
        return self._text(self.err)


class LagoException(Exception):
    """Lago's base exception (``lago.utils.LagoException``)."""


class LagoUserException(LagoException):
    """A failure the user can fix (``lago.utils.LagoUserException``)."""


class LagoError(LagoException):
    """Base of every error the lago library raises. ``str(e)`` is the
    one-line message the ``lago`` CLI prints for the same failure."""


class LagoNotFoundError(LagoError, LagoUserException, LookupError):
    """No such VM, network, workdir or prefix."""


class LagoBadInputError(LagoError, LagoUserException, ValueError):
    """Bad input or state the caller can fix: a malformed init file, an
    existing prefix, a missing local file, a prefix not initialized."""


class LagoVMNotRunningError(LagoError, LagoUserException):
    """The VM is not running, so it cannot be reached over SSH (Lago's
    ``lago.plugins.vm.LagoVMNotRunningError``)."""


class LagoSSHError(LagoError):
    """SSH to a running VM failed (connect, authentication, host key,
    transfer)."""


class LagoProviderError(LagoError):
    """A vm-provider, vm-type or vm-service plugin refused or failed."""


class LagoInternalError(LagoError):
    """A failure of lago or the system (I/O, a plugin panic)."""
