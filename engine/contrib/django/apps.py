from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class DurableEngineConfig(AppConfig):
    """Django adapter of the engine: owns the engine tables' migrations and wires settings in."""

    name = "engine.contrib.django"
    label = "durable_engine"
    verbose_name = "Durable engine"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        import engine
        from engine.contrib.django.setup import dsn_from_settings

        engine.configure(
            dsn=dsn_from_settings(settings.DATABASES["default"]),
            dispatcher=LazyCeleryDispatcher(),
            handler_paths=list(getattr(settings, "DURABLE_HANDLER_PATHS", [])),
        )


class LazyCeleryDispatcher:
    """``engine.celery_tasks.CeleryDispatcher``, imported at the first dispatch: a process that
    never queues an invocation (a CLI command that reads) does not import Celery and kombu."""

    def __init__(self) -> None:
        self._dispatcher: Any = None

    def _celery(self) -> Any:
        if self._dispatcher is None:
            from engine.celery_tasks import CeleryDispatcher

            self._dispatcher = CeleryDispatcher()
        return self._dispatcher

    def invoke(self, execution_id: int, timeout: float) -> None:
        self._celery().invoke(execution_id, timeout)

    def redispatch(self, execution_id: int, timeout: float, generation: int) -> None:
        self._celery().redispatch(execution_id, timeout, generation)

    def call_plain(self, call: Any) -> None:
        self._celery().call_plain(call)

    def run_async_invocation(self, invocation_id: int, countdown: float) -> None:
        self._celery().run_async_invocation(invocation_id, countdown)
