"""Lago's ``lago.utils``: the helpers test suites import from it, with
Lago's behaviour (Lago 1.0's ``lago/utils.py`` is the reference).

Commands run from an argument list, never through a shell.
"""

import functools
import json
import logging
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid as uuid_m

from ._core import CommandStatus, LagoException, LagoUserException
from .log_utils import LogTask

__all__ = [
    "CommandStatus",
    "EggTimer",
    "ExceptionTimer",
    "LagoException",
    "LagoInitException",
    "LagoUserException",
    "TimerException",
    "VectorThread",
    "func_vector",
    "get_qemu_info",
    "invoke_different_funcs_in_parallel",
    "invoke_in_parallel",
    "run_command",
    "run_command_with_validation",
]

LOGGER = logging.getLogger(__name__)


class LagoInitException(LagoException):
    """Lago's ``LagoInitException``."""


class TimerException(Exception):
    """Raised by :class:`ExceptionTimer` when its time is up."""


def _ret_via_queue(func, q):
    try:
        q.put({"return": func()})
    except Exception:
        LOGGER.debug(
            "Error while running thread %s", threading.current_thread().name, exc_info=True
        )
        q.put({"exception": sys.exc_info()})


def func_vector(target, args_sequence):
    """``[partial(target, *args) for args in args_sequence]``."""
    return [functools.partial(target, *args) for args in args_sequence]


class VectorThread:
    """Runs each of ``targets`` (callables) in its own thread; ``join_all``
    returns their results in order and re-raises the first exception."""

    def __init__(self, targets):
        self.targets = targets
        self.results = None
        self.thread_handles = []

    def start_all(self):
        self.thread_handles = []
        for target in self.targets:
            q = queue.Queue()
            t = threading.Thread(target=_ret_via_queue, args=(target, q))
            self.thread_handles.append((t, q))
            t.start()

    def join_all(self, raise_exceptions=True):
        if self.results:
            return self.results
        for t, _ in self.thread_handles:
            t.join()
        self.results = [q.get() for _, q in self.thread_handles]
        if raise_exceptions:
            for result in self.results:
                if "exception" in result:
                    _, value, tb = result["exception"]
                    raise value.with_traceback(tb)
        return [x.get("return", None) for x in self.results]


def invoke_in_parallel(func, *args_sequences):
    """``func`` called once per position of the argument sequences, all in
    parallel: ``invoke_in_parallel(f, [1, 2], ['a', 'b'])`` runs ``f(1, 'a')``
    and ``f(2, 'b')``; returns the results in order."""
    vt = VectorThread(func_vector(func, list(zip(*args_sequences))))
    vt.start_all()
    return vt.join_all()


def invoke_different_funcs_in_parallel(*funcs):
    """Each of ``funcs`` (no arguments) in parallel; the results in order."""
    vt = VectorThread(funcs)
    vt.start_all()
    return vt.join_all()


def _run_command(command, input_data=None, stdin=None, out_pipe=subprocess.PIPE,
                 err_pipe=subprocess.PIPE, env=None, uuid=None, **kwargs):
    if uuid is None:
        uuid = uuid_m.uuid4()
    if isinstance(input_data, str):
        input_data = input_data.encode("utf-8")
    if input_data is not None and not stdin:
        kwargs["stdin"] = subprocess.PIPE
    elif stdin:
        kwargs["stdin"] = stdin
    popen = subprocess.Popen(
        [str(arg) for arg in command], stdout=out_pipe, stderr=err_pipe, env=env, **kwargs
    )
    out, err = popen.communicate(input_data)
    LOGGER.debug("%s: command exit with return code: %d", uuid, popen.returncode)
    if out:
        LOGGER.debug("%s: command stdout: %s", uuid, out)
    if err:
        LOGGER.debug("%s: command stderr: %s", uuid, err)
    return CommandStatus(popen.returncode, out, err)


def run_command(command, input_data=None, out_pipe=subprocess.PIPE,
                err_pipe=subprocess.PIPE, env=None, **kwargs):
    """Run ``command`` (a list: the program and its arguments; no shell) and
    wait for it.

    Args:
        command (list of str): e.g. ``['ls', '-l']``.
        input_data (bytes or str): fed to its standard input.
        out_pipe, err_pipe: as ``subprocess.Popen``'s ``stdout``/``stderr``.
        env (dict): its environment (default: this process's).
        **kwargs: passed to ``subprocess.Popen``.

    Returns:
        CommandStatus: ``(code, out, err)``, ``out``/``err`` as bytes
        (``None`` when not piped).
    """
    with LogTask(
        "Run command: %s" % " ".join('"%s"' % arg for arg in command),
        logger=LOGGER,
        level="debug",
    ) as task:
        return _run_command(
            command, input_data=input_data, out_pipe=out_pipe, err_pipe=err_pipe,
            env=env, uuid=task.uuid, **kwargs
        )


def run_command_with_validation(cmd, fail_on_error=True, msg="An error has occurred"):
    """:func:`run_command`, raising RuntimeError (``msg`` and its standard
    error) when it fails and ``fail_on_error``."""
    result = run_command(cmd)
    if result and fail_on_error:
        raise RuntimeError("{}\n{}".format(msg, result.err_text))
    return result


def get_qemu_info(path, backing_chain=False, fail_on_error=True):
    """``qemu-img info --output=json`` of the image at ``path`` as a dict (a
    list of dicts, one per image of the chain, with ``backing_chain``).
    Raises RuntimeError when qemu-img fails and ``fail_on_error``."""
    cmd = ["qemu-img", "info", "--output=json", str(path)]
    if backing_chain:
        cmd.insert(-1, "--backing-chain")
    result = run_command_with_validation(
        cmd, fail_on_error, msg="Failed to get info for {}".format(path)
    )
    return json.loads(result.out)


class EggTimer:
    """``with EggTimer(seconds) as t: ... t.elapsed()``: whether more than
    ``timeout`` seconds passed since the block began."""

    def __init__(self, timeout):
        self.timeout = timeout
        self.start_time = None

    def __enter__(self):
        self.start_time = time.time()
        return self

    def __exit__(self, *_):
        pass

    def elapsed(self):
        return (time.time() - self.start_time) > self.timeout


class ExceptionTimer:
    """``with ExceptionTimer(seconds):``: raises :class:`TimerException` in
    the block after ``timeout`` whole seconds (SIGALRM: main thread only, as
    Lago's); 0 or None never."""

    def __init__(self, timeout):
        self.timeout = timeout or 0

    def __enter__(self):
        self.start()

    def __exit__(self, *_):
        self.stop()

    def start(self):
        def raise_timeout(*_):
            raise TimerException("Passed %d seconds" % self.timeout)

        signal.signal(signal.SIGALRM, raise_timeout)
        signal.alarm(self.timeout)

    def stop(self):
        signal.alarm(0)
