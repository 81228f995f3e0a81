"""Lago's ``lago.prefix`` names suites use: :class:`Prefix` with
``is_prefix`` and ``resolve_prefix_path``, and ``LagoDeployError``. A prefix
is a folder lago made (it holds a ``uuid`` file); the environment object is
``lago.sdk``'s ``Env``."""

import os

from ._core import LagoBadInputError, LagoException

__all__ = ["Prefix", "LagoDeployError"]


class LagoDeployError(LagoException):
    """A deploy script failed (Lago's ``lago.prefix.LagoDeployError``)."""


class Prefix:
    """Lago's prefix helpers (class methods only here)."""

    @classmethod
    def is_prefix(cls, path):
        """Whether ``path`` is a lago prefix (holds a ``uuid`` file)."""
        return os.path.isfile(os.path.join(path, "uuid"))

    @classmethod
    def resolve_prefix_path(cls, start_path=None):
        """The prefix at ``start_path`` (default: the working folder) or in
        one of its parents, looking in each for itself, ``current`` (a
        workdir's), ``.lago/current`` and ``.lago``. Raises ``LagoBadInputError`` when there is none."""
        start = os.path.abspath(start_path or os.curdir)
        path = start
        while True:
            for candidate in (path, os.path.join(path, "current"),
                              os.path.join(path, ".lago", "current"),
                              os.path.join(path, ".lago")):
                if cls.is_prefix(candidate):
                    return os.path.realpath(candidate)
            parent = os.path.dirname(path)
            if parent == path:
                raise LagoBadInputError("no lago prefix found at or above {}".format(start))
            path = parent
