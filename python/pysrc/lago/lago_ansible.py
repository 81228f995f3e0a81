"""Lago's ``lago.lago_ansible``: :class:`LagoAnsible` over an environment
(``lago.sdk``'s ``Env``) and its inventory as a temporary file."""

import contextlib
import tempfile

__all__ = ["LagoAnsible"]

_DEFAULT_KEYS = ["vm-type", "groups", "vm-provider"]


@contextlib.contextmanager
def _inventory_temp_file(text):
    """A named temporary file holding ``text`` (flushed, read position at
    its start), removed when the block ends."""
    with tempfile.NamedTemporaryFile(mode="r+t", prefix="lago-inventory-") as f:
        f.write(text)
        f.flush()
        f.seek(0)
        yield f


class LagoAnsible:
    """Ansible inventories of an environment, as Lago's class.

    Args:
        prefix: the environment (``lago.sdk.init``/``load_env``'s ``Env``).
    """

    def __init__(self, prefix):
        self.prefix = prefix

    def get_inventory_str(self, keys=None):
        """The INI inventory, hosts grouped by the spec ``keys`` (Lago's
        default: ``vm-type``, ``groups``, ``vm-provider``)."""
        return self.prefix.ansible_inventory(keys=list(keys or _DEFAULT_KEYS))

    def get_inventory_temp_file(self, keys=None):
        """Context manager yielding a ``NamedTemporaryFile`` holding the
        inventory; the file is removed when the block ends."""
        return _inventory_temp_file(self.get_inventory_str(keys))
