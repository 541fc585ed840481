from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections
from django.utils.module_loading import import_string

from engine import scheduler
from engine.celery_tasks import load_broker_transport


class Command(BaseCommand):
    help = "Run the timer and recovery loop (durable timers, lost-invocation recovery) until stopped."

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        load_broker_transport()
        self.stdout.write("durable scheduler: running (Ctrl-C to stop)")
        scheduler.run_forever(stop, _configured_duties())
        self.stdout.write("durable scheduler: stopped")


def _configured_duties() -> list[tuple[str, float, Callable[[], object]]]:
    """``DURABLE_SCHEDULER_DUTIES`` (dotted path → seconds between runs) as scheduler duties."""
    return [
        (path, float(every), _with_fresh_connection(import_string(path)))
        for path, every in getattr(settings, "DURABLE_SCHEDULER_DUTIES", {}).items()
    ]


def _with_fresh_connection(duty: Callable[[], object]) -> Callable[[], object]:
    """Django reuses a connection across calls only inside a request; this long-lived loop
    returns it to the pool after each run, so a broken one is not kept after an outage."""

    def run() -> object:
        try:
            return duty()
        finally:
            close_old_connections()

    return run
