"""Lago's SDK: ``init``, ``load_env`` and ``add_stream_logger``.

Names, arguments and return shapes follow Lago's ``lago.sdk``: a script
written for Lago runs with its import line as it is (``from lago import
sdk``). Every call that reaches a VM or a provider releases the GIL; lago's
log records go to Python's ``logging`` (logger ``lago``).
"""

import logging
import os

from . import _native
from ._native import Env, Net, Service, VM  # noqa: F401 (re-exported)

__all__ = ["init", "load_env", "add_stream_logger", "Env", "VM", "Net", "Service"]

_LOGGER = "lago"


def _setup_logging(logfile, loglevel):
    """Lago's ``sdk.init`` logging: ``loglevel`` on the ``lago`` logger and,
    when ``logfile`` is given, a file handler at that level."""
    logger = logging.getLogger(_LOGGER)
    logger.setLevel(loglevel)
    if logfile:
        path = os.path.abspath(logfile)
        for h in logger.handlers:
            if isinstance(h, logging.FileHandler) and h.baseFilename == path:
                return
        handler = logging.FileHandler(path)
        handler.setLevel(loglevel)
        handler.setFormatter(
            logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s")
        )
        logger.addHandler(handler)


def init(config, workdir=None, logfile=None, loglevel=logging.INFO, **kwargs):
    """Initialize an environment (``lago init``) and return it, not started.

    Args:
        config (str): path of the init file (YAML or JSON).
        workdir (str): the workdir to create the prefix in (created when
            missing); default ``./.lago``.
        logfile (str): also log to this file (appended).
        loglevel (int): level of the ``lago`` logger (``logging.INFO``).
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
        LagoBadInputError: the init file is refused, the prefix exists, a
            template is unknown (nothing is left behind).
        LagoProviderError: a provider could not prepare a disk.
        LagoInternalError: an I/O or system failure.
    """
    _setup_logging(logfile, loglevel)
    if workdir is None:
        workdir = os.path.join(os.getcwd(), ".lago")
    return _native.init(os.fspath(config), os.fspath(workdir), **kwargs)


def load_env(workdir, prefix="current", logfile=None, loglevel=logging.INFO, **kwargs):
    """Load an initialized environment, e.g. one another process made.

    Args:
        workdir (str): the workdir.
        prefix (str): the prefix name in it (``current``: the current one).
        logfile (str), loglevel (int): as :func:`init`.
        **kwargs: ``settings`` and ``plugin_dir``, as :func:`init`.

    Returns:
        Env: the environment.

    Raises:
        LagoNotFoundError: no workdir or no such prefix.
        LagoBadInputError: the prefix's init did not finish.
    """
    _setup_logging(logfile, loglevel)
    return _native.load_env(os.fspath(workdir), prefix, **kwargs)


def add_stream_logger(level=logging.DEBUG, name=None):
    """Log to standard error (Lago's ``sdk.add_stream_logger``).

    Args:
        level (int): the handler's and the logger's level.
        name (str): the logger (default ``lago``).
    """
    logger = logging.getLogger(name or _LOGGER)
    logger.setLevel(level)
    handler = logging.StreamHandler()
    handler.setLevel(level)
    handler.setFormatter(
        logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s")
    )
    logger.addHandler(handler)
