from __future__ import annotations

from django.apps import AppConfig


class LabConfig(AppConfig):
    """The teaching lab: comparisons of semantics, retry strategies and faults, diffs, and the demos."""

    name = "lab"
    verbose_name = "Teaching lab"
    default_auto_field = "django.db.models.BigAutoField"
