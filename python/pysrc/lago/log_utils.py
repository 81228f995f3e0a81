"""Lago's ``lago.log_utils`` basics: the default formatter, log tasks
(``LogTask``, ``log_task``, ``start_log_task``/``end_log_task``),
``log_always`` and ``setup_prefix_logging``. Lago's colored task tree on the
terminal is not reproduced (lago's own records go to logger ``lago``)."""

import functools
import logging
import os
import traceback
import uuid as uuid_m

START_TASK_TRIGGER_MSG = "start task%s"
END_TASK_TRIGGER_MSG = "end task%s"
ALWAYS_SHOW_TRIGGER_MSG = "force-show:%s"


def get_default_log_formatter():
    """Lago's file log format."""
    return logging.Formatter(
        fmt=(
            "%(asctime)s::%(filename)s::%(funcName)s::%(lineno)s::"
            "%(name)s::%(levelname)s::%(message)s"
        ),
    )


def start_log_task(task, logger=logging, level="info"):
    getattr(logger, level)(START_TASK_TRIGGER_MSG % task)


def end_log_task(task, logger=logging, level="info"):
    getattr(logger, level)(END_TASK_TRIGGER_MSG % task)


def log_always(message):
    """A message shown whatever the level (Lago's ``force-show``)."""
    return ALWAYS_SHOW_TRIGGER_MSG % message


class LogTask:
    """``with LogTask('mytask'):`` logs the task's start and end (``ERROR``
    when the block raises, then re-raised)."""

    def __init__(self, task, logger=logging, level="info", propagate_fail=True, uuid=None):
        self.task = task
        self.logger = logger
        self.level = level
        self.propagate = propagate_fail
        self.uuid = uuid_m.uuid4() if uuid is None else uuid
        self.header = self.task
        if self.level != "info":
            self.header = ":{0}:{1}:".format(self.uuid, self.task)

    def __enter__(self):
        getattr(self.logger, self.level)(START_TASK_TRIGGER_MSG % self.header)
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        if exc_type and self.propagate:
            end_log_task(self.header, logger=self.logger, level="error")
            self.logger.debug("".join(traceback.format_tb(exc_tb)))
            return False
        getattr(self.logger, self.level)(END_TASK_TRIGGER_MSG % self.header)
        return False


def log_task(task, logger=logging, level="info", propagate_fail=True, uuid=None):
    """Decorator: the function runs inside ``LogTask(task, ...)``."""

    def decorator(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with LogTask(task, logger=logger, level=level, propagate_fail=propagate_fail,
                         uuid=uuid):
                return func(*args, **kwargs)

        return wrapper

    return decorator


def setup_prefix_logging(logdir):
    """A file handler on the root logger writing ``logdir/lago.log``
    (``logdir`` created when missing), as Lago's."""
    os.makedirs(logdir, exist_ok=True)
    handler = logging.FileHandler(filename=os.path.join(logdir, "lago.log"))
    handler.setFormatter(get_default_log_formatter())
    logging.root.addHandler(handler)
