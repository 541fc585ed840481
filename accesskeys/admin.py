from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from accesskeys.models import AccessKey


@admin.register(AccessKey)
class AccessKeyAdmin(admin.ModelAdmin):
    """Staff see every key; the secret stays encrypted and nothing is edited here (use the page or CLI)."""

    list_display = ["access_key_id", "user", "created", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["access_key_id", "user__username"]
    readonly_fields = ["access_key_id", "user", "secret_encrypted", "created", "last_used_at", "revoked_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
