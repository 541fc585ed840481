"""Create, revoke and list access keys; every change leaves an audit entry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accesskeys.models import AccessKey, is_key_id, new_secret_access_key
from executions.services import audit


class AccessKeyNotFound(Exception):
    """No access key with that id belongs to the user."""


@dataclass(frozen=True)
class NewAccessKey:
    """A key just made: the only moment its plaintext secret is known outside the vault."""

    key: AccessKey
    secret: str


def _actor(actor: Any) -> Any:
    return actor if actor is not None else AnonymousUser()


def access_key_create(*, user: Any, actor: Any = None) -> NewAccessKey:
    """Make a key for ``user``; ``actor`` is who asked (None: the command line)."""
    secret = new_secret_access_key()
    key = AccessKey(user=user)
    key.set_secret(secret)
    with transaction.atomic():
        key.save()
        audit(user=_actor(actor), action="access_key.create", target=key.access_key_id, owner=user.get_username())
    return NewAccessKey(key=key, secret=secret)


def access_key_revoke(
    *, access_key_id: str, user: Any, actor: Any = None, clock: Callable[[], datetime] = timezone.now
) -> AccessKey:
    """Revoke ``user``'s key (idempotent: a revoked key keeps its first revocation time)."""
    if not is_key_id(access_key_id):
        raise AccessKeyNotFound(access_key_id)
    with transaction.atomic():
        key = AccessKey.objects.select_for_update().filter(user=user, access_key_id=access_key_id).first()
        if key is None:
            raise AccessKeyNotFound(access_key_id)
        if key.revoked_at is None:
            key.revoked_at = clock()
            key.save(update_fields=["revoked_at"])
        audit(user=_actor(actor), action="access_key.revoke", target=key.access_key_id, owner=user.get_username())
    return key


def access_key_list(*, user: Any) -> QuerySet[AccessKey]:
    return AccessKey.objects.filter(user=user).order_by("-created")
