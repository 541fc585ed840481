from __future__ import annotations

import base64
import re
import secrets
import string
from typing import Any

from django.conf import settings
from django.db import models

from accesskeys import vault

KEY_ID_PREFIX = "AKIA"
KEY_ID_ALPHABET = string.ascii_uppercase + string.digits
# Any id a key could have (IAM's pattern, upper case): checked before a client's text is queried,
# so no NUL or lone surrogate reaches PostgreSQL.
KEY_ID_PATTERN = re.compile(r"[A-Z0-9]{16,128}")


def is_key_id(value: str) -> bool:
    return KEY_ID_PATTERN.fullmatch(value) is not None


def new_access_key_id() -> str:
    """``AKIA`` + 16 upper-case letters and digits, the shape of an AWS long-term key id."""
    return KEY_ID_PREFIX + "".join(secrets.choice(KEY_ID_ALPHABET) for _ in range(16))


def new_secret_access_key() -> str:
    """40 base64 characters (30 random bytes), the shape of an AWS secret access key."""
    return base64.b64encode(secrets.token_bytes(30)).decode("ascii")


class AccessKey(models.Model):
    """A user's SigV4 credential for the wire API; the secret is stored encrypted (accesskeys.vault)."""

    access_key_id = models.CharField(max_length=20, unique=True, default=new_access_key_id, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_keys")
    secret_encrypted = models.TextField(editable=False)
    created = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # A runtime process's key (engine.runtimes): it may only checkpoint and read the state of
    # this one execution, and only until expires_at. Both empty for a user's own keys.
    execution_arn = models.CharField(max_length=1024, blank=True, default="", editable=False)
    expires_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return self.access_key_id

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def expired(self, now: Any) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    @property
    def status(self) -> str:
        """IAM's words: ``Active`` or ``Inactive``."""
        return "Active" if self.is_active else "Inactive"

    def set_secret(self, secret: str) -> None:
        self.secret_encrypted = vault.encrypt(secret)

    def secret(self) -> str:
        """Return the plaintext secret; raise ``vault.InvalidToken`` if SECRET_KEY changed."""
        return vault.decrypt(self.secret_encrypted)
