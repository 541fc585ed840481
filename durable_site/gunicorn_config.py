"""Gunicorn's settings for `make run`'s web part (``-c python:durable_site.gunicorn_config``).

One worker process with a fixed set of threads (gthread): the web process's connection pools
are sized for one process (settings.py has the budget), and the threads never outnumber its
Django pool. `durable_up.web_command` adds the address and the thread count.

Gunicorn's own lines (its error log and the access log) go to the root logger, through the
terminal's handler and its quiet filter (terminal.py): quiet, the terminal shows warnings and
one "web ready" line; ``-v`` shows every request.
"""

from __future__ import annotations

import logging
import logging.config
import os
from typing import Any

from gunicorn import glogging

from durable_site import terminal

worker_class = "gthread"
workers = 1
# A burst of simultaneous requests queues here instead of being reset.
backlog = 1024
# SIGTERM from the supervisor: in-flight requests get this long, well inside its STOP_GRACE.
graceful_timeout = 10
# Seconds without a heartbeat from the worker's main loop (not from a request thread) before
# the arbiter restarts it: a slow request does not count.
timeout = 60
keepalive = 5
proc_name = "durable-lab-web"
# No control socket: its default path ($HOME/.gunicorn/gunicorn.ctl) is one per user, and two
# checkouts running at once would fight over it.
control_socket_disable = True
# Longer than Gunicorn's 4 KiB default, so an over-long query string reaches the API's own
# validation and gets AWS's error shape, not Gunicorn's HTML "URI Too Long".
limit_request_line = 16384
accesslog = "-"


class TerminalLogger(glogging.Logger):
    """Gunicorn's loggers without handlers of their own: they propagate to the terminal's."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in list(log.handlers):
                log.removeHandler(handler)
            log.propagate = True
        # The arbiter never loads the Django settings: it gets the same terminal handler here.
        # The worker's settings configure it again, identically (disable_existing_loggers=False).
        logging.config.dictConfig(terminal.logging_config(os.environ.get("DURABLE_LOG_LEVEL", "INFO")))


logger_class = TerminalLogger


def post_worker_init(worker: Any) -> None:
    """The one line the quiet terminal shows for the web part (loggers named durable.* pass),
    said once the worker has loaded Django and answers requests, not when the socket opens."""
    addresses = ", ".join(str(listener) for listener in worker.sockets)
    logging.getLogger("durable.web").info("web ready on %s", addresses)
