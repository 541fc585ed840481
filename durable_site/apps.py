"""The project layer: wires the demo functions into the engine and owns `make run`'s command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.apps import AppConfig, apps
from django.conf import settings
from django.db.models.signals import post_migrate


class DurableSiteConfig(AppConfig):
    name = "durable_site"
    verbose_name = "Durable Lab"

    def ready(self) -> None:
        allow_project_handlers()
        if settings.DURABLE_REGISTER_DEMOS:
            # Sent once the engine's own migrations ran, so its function table exists.
            post_migrate.connect(register_demo_functions, sender=apps.get_app_config("durable_engine"))


def allow_project_handlers() -> None:
    """The project's own handlers may be named by a function, wherever DURABLE_HANDLER_PATHS
    points: the demos, the conformance handlers, the benchmarks' handlers (only those files)."""
    from engine import handler_paths

    root = Path(settings.BASE_DIR)
    handler_paths.allow(root / "demos", root / "conformance" / "handlers", root / "bench" / "handlers.py")


def register_demo_functions(**_: Any) -> None:
    """Register (or refresh) the demo functions after ``migrate``."""
    from demos import DEMO_FUNCTIONS
    from engine import registry

    for spec in DEMO_FUNCTIONS:
        registry.create_function(
            spec["FunctionName"], {k: v for k, v in spec.items() if k != "FunctionName"}, replace=True
        )
