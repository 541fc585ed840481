"""The project's Celery app plus what the bench's baselines need: a result backend and no-op tasks.

The worker the bench starts runs this module (``celery -A bench.celery_app``), so engine tasks and
baseline tasks share one app, one broker and one worker, as benchmarks.md requires.
"""

from __future__ import annotations

import os

from durable_site.celery import app

# Only the baseline round trip (``noop.delay().get()``) needs results; engine tasks keep
# ignore_result=True. Redis stores results without polling, so ``.get()`` adds no interval.
app.conf.result_backend = os.environ.get("DURABLE_BENCH_RESULT_BACKEND") or app.conf.broker_url
app.conf.result_expires = 600


@app.task(name="bench.noop", ignore_result=False)
def noop() -> None:
    """One Celery round trip's worth of work: nothing."""


@app.task(name="bench.noop_fire", ignore_result=True)
def noop_fire() -> None:
    """The enqueue half of the B3 baseline: a message the worker drains."""
