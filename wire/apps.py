from __future__ import annotations

from django.apps import AppConfig


class WireConfig(AppConfig):
    name = "wire"
    verbose_name = "AWS wire API"
