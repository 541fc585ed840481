from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand

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
        scheduler.run_forever(stop)
        self.stdout.write("durable scheduler: stopped")
