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
        from django.db.models.signals import post_migrate

        import engine
        from engine.celery_tasks import CeleryDispatcher
        from engine.contrib.django.setup import dsn_from_settings, register_demo_functions

        engine.configure(dsn=dsn_from_settings(settings.DATABASES["default"]), dispatcher=CeleryDispatcher())
        if settings.DURABLE_REGISTER_DEMOS:
            post_migrate.connect(register_demo_functions, sender=self)
