"""Lago's ``lago.workdir`` exceptions. A second ``sdk.init`` on a workdir
whose prefix exists raises :class:`PrefixAlreadyExists` (suites catch it and
``sdk.load_env`` instead)."""

from ._core import LagoBadInputError, LagoNotFoundError

__all__ = ["WorkdirError", "PrefixNotFound", "MalformedWorkdir", "PrefixAlreadyExists"]


class WorkdirError(RuntimeError):
    """Lago's base of workdir errors."""


class PrefixNotFound(WorkdirError, LagoNotFoundError):
    """No such prefix in the workdir."""


class MalformedWorkdir(WorkdirError, LagoBadInputError):
    """The folder is not a usable workdir."""


class PrefixAlreadyExists(WorkdirError, LagoBadInputError):
    """The prefix ``init`` would create exists already."""
