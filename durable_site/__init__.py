"""Durable Lab's Django project.

The Celery app (``durable_site.celery``) is imported when something queues or runs tasks, not
with the settings: a CLI command that only reads saves importing Celery (~0.2 s). The worker
finds it as ``celery -A durable_site`` (Celery looks for ``durable_site.celery``), and
``engine.celery_tasks`` imports it (``DURABLE_CELERY_APP``) before its tasks are used.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "celery_app":  # Celery's Django layout names the app here
        from durable_site.celery import app

        return app
    raise AttributeError(f"module 'durable_site' has no attribute {name!r}")


__all__ = ("celery_app",)
