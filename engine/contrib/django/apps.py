from __future__ import annotations

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
        from engine.celery_tasks import CeleryDispatcher
        from engine.contrib.django.setup import dsn_from_settings

        engine.configure(dsn=dsn_from_settings(settings.DATABASES["default"]), dispatcher=CeleryDispatcher())
