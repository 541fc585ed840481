from __future__ import annotations

from django.apps import AppConfig


class AccessKeysConfig(AppConfig):
    name = "accesskeys"
    verbose_name = "Access keys"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The engine's `durable` command cannot import this app (layer map); the app adds its
        # subcommands to the command's registry instead.
        from accesskeys import cli
        from accesskeys.runtime import ExecutionKeys
        from engine import runtimes

        cli.register()
        runtimes.configure(credentials=ExecutionKeys())
