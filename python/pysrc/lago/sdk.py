"""Lago's SDK: ``init``, ``load_env`` and ``add_stream_logger``.

Names, arguments and return shapes follow Lago's ``lago.sdk``: a script
written for Lago runs with its import line as it is (``from lago import
sdk``). Every call that reaches a VM or a provider releases the GIL; lago's
log records go to Python's ``logging`` (logger ``lago``).

Logging as Lago's ``setup_sdk_logging``: the root logger at DEBUG with a
``NullHandler`` and, with ``logfile``, a file handler at ``loglevel`` on the
root logger (so a suite's own records land in the same file). Each
environment also writes its ``<prefix>/logs/lago.log`` (lago's records, at
debug level) as the ``lago`` CLI does.
"""

import logging
import os

from . import _native
from ._core import LagoBadInputError
from ._native import Env, Net, Service, VM  # noqa: F401 (re-exported)
from .log_utils import get_default_log_formatter
from .workdir import PrefixAlreadyExists

__all__ = ["init", "load_env", "add_stream_logger", "Env", "VM", "Net", "Service"]

_LOGGER = "lago"

#: The prefix logs this process writes, by path: one handler each.
_PREFIX_LOGS = {}


def _setup_sdk_logging(logfile, loglevel):
    """Lago's ``setup_sdk_logging``: the root logger at DEBUG, and a file
    handler at ``loglevel`` on it for ``logfile`` (once per file)."""
    logging.root.setLevel(logging.DEBUG)
    if not any(isinstance(h, logging.NullHandler) for h in logging.root.handlers):
        logging.root.addHandler(logging.NullHandler())
    if logfile:
        path = os.path.abspath(os.fspath(logfile))
        for h in logging.root.handlers:
            if isinstance(h, logging.FileHandler) and h.baseFilename == path:
                h.setLevel(loglevel)
                return
        handler = logging.FileHandler(path)
        handler.setLevel(loglevel)
        handler.setFormatter(get_default_log_formatter())
        logging.root.addHandler(handler)


def _attach_prefix_log(env):
    """lago's records into ``<prefix>/logs/lago.log`` (appended, the
    owner's only, never through a link), as the CLI writes it."""
    logs = os.path.join(env.prefix, "logs")
    path = os.path.join(logs, "lago.log")
    if path in _PREFIX_LOGS:
        return
    os.makedirs(logs, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    handler = logging.StreamHandler(os.fdopen(fd, "a", encoding="utf-8"))
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    logging.getLogger(_LOGGER).addHandler(handler)
    _PREFIX_LOGS[path] = handler


def _exists_message(prefix):
    return (
        "the prefix {} already exists; load it with sdk.load_env() (and destroy() it "
        "if it is yours), or choose another prefix_name=".format(prefix)
    )


def init(config, workdir=None, logfile=None, loglevel=logging.INFO, **kwargs):
    """Initialize an environment (``lago init``) and return it, not started.

    Args:
        config (str): path of the init file (YAML or JSON).
        workdir (str): the workdir to create the prefix in (created when
            missing); default ``./.lago``.
        logfile (str): also log to this file (appended), through the root
            logger.
        loglevel (int): level of the ``logfile`` handler (``logging.INFO``).
        **kwargs: ``lago init`` options: ``prefix_name`` (str),
            ``template_repo_path`` (str), ``template_repo_name`` (str),
            ``template_store`` (str), ``template_repos`` (str),
            ``skip_bootstrap`` (bool), ``skip_build`` (bool), ``set_current``
            (bool); and ``settings`` ({section: {key: value}} configuration
            overrides), ``plugin_dir`` (str: a folder of ``liblago_*.so``
            plugin libraries).

    Returns:
        Env: the environment.

    Raises:
        lago.workdir.PrefixAlreadyExists: the workdir has that prefix
            already, also when another process's init made it meanwhile
            (``load_env`` it instead).
        LagoBadInputError: the init file is refused, a template is unknown
            (nothing is left behind).
        LagoProviderError: a provider could not prepare a disk.
        LagoInternalError: an I/O or system failure.
    """
    _setup_sdk_logging(logfile, loglevel)
    if workdir is None:
        workdir = os.path.join(os.getcwd(), ".lago")
    workdir = os.fspath(workdir)
    prefix = os.path.join(workdir, kwargs.get("prefix_name") or "default")
    if os.path.lexists(prefix):
        raise PrefixAlreadyExists(_exists_message(prefix))
    try:
        env = _native.init(os.fspath(config), workdir, **kwargs)
    except LagoBadInputError:
        # Another process made the prefix meanwhile (a failed init of this
        # one leaves nothing behind): the same answer whatever the timing.
        if os.path.lexists(prefix):
            raise PrefixAlreadyExists(_exists_message(prefix)) from None
        raise
    _attach_prefix_log(env)
    return env


def load_env(workdir, logfile=None, loglevel=logging.INFO, prefix="current", **kwargs):
    """Load an initialized environment, e.g. one another process made.

    Args:
        workdir (str): the workdir.
        logfile (str), loglevel (int): as :func:`init`.
        prefix (str): the prefix name in it (``current``: the current one).
        **kwargs: ``settings`` and ``plugin_dir``, as :func:`init`.

    A prefix another process is still initializing is waited for (at
    most 10 minutes).

    Returns:
        Env: the environment.

    Raises:
        LagoNotFoundError: no workdir or no such prefix.
        LagoBadInputError: the prefix's init did not finish (or is still
            running after 10 minutes).
    """
    _setup_sdk_logging(logfile, loglevel)
    env = _native.load_env(os.fspath(workdir), prefix, **kwargs)
    _attach_prefix_log(env)
    return env


def add_stream_logger(level=logging.DEBUG, name=None):
    """Log to standard error (Lago's ``sdk.add_stream_logger``).

    Args:
        level (int): the handler's and the logger's level.
        name (str): the logger (default: the root logger, as Lago).
    """
    logger = logging.getLogger(name)
    logger.setLevel(level)
    handler = logging.StreamHandler()
    handler.setLevel(level)
    handler.setFormatter(get_default_log_formatter())
    logger.addHandler(handler)
