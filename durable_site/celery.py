from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import setup_logging, task_postrun, task_prerun, worker_process_init

from durable_site import terminal

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "durable_site.settings")

app = Celery("durable_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["engine"], related_name="celery_tasks")


@setup_logging.connect
def _keep_django_logging(**_: Any) -> None:
    """Django's LOGGING (durable_site.terminal) is the worker's logging too.

    Connected, this stops Celery from adding its own handlers and from sending handler
    ``print``s to the ``celery.redirected`` logger as WARNINGs: the pool children tag them.
    """


@worker_process_init.connect
def _tag_handler_output(**_: Any) -> None:
    terminal.tag_worker_stdout()


@task_prerun.connect
def _note_invocation(sender: Any = None, args: Any = None, **_: Any) -> None:
    durable = getattr(sender, "name", "") == "durable.run_invocation" and args
    terminal.invocation_started(int(args[0]) if durable else None)


@task_postrun.connect
def _forget_invocation(**_: Any) -> None:
    terminal.invocation_ended()
