"""Data owned by the dashboard (the engine's tables live in ``engine.contrib.django``)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

OPERATE_PERMISSION = "executions.operate_executions"


class AuditEntry(models.Model):
    """Who did what: every state-changing action taken through the UI."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    action = models.CharField(max_length=64)
    target = models.CharField(max_length=512)
    detail = models.JSONField(default=dict)
    # A plain id, not a foreign key: executions expire by retention and the trail must outlive them.
    execution_pk = models.BigIntegerField(null=True, blank=True, db_index=True)
    ok = models.BooleanField(default=True)

    class Meta:
        ordering = ["-at"]
        verbose_name_plural = "audit entries"
        permissions = [
            ("operate_executions", "Can start, stop and inject faults into executions, and answer callbacks"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.user} {self.action} {self.target}"
