"""The access keys runtime processes sign with (engine.runtimes): one execution's, short-lived.

A runtime process's SDK checkpoints over the wire API like any client; its key lets it checkpoint
and read the state of one execution only (``wire.auth``), and stops working at ``expires_at``
(``accesskeys.sigv4``). A warm process keeps its key across invocations: each one rebinds it to
its own execution and deadline.
The keys belong to a service user that cannot log in.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone

from accesskeys.models import AccessKey, new_secret_access_key

RUNTIME_USERNAME = "durable-runtime"
KEEP_EXPIRED = timedelta(days=1)  # expired runtime keys are deleted this long after, as new ones are made


def _runtime_user() -> Any:
    user, created = get_user_model().objects.get_or_create(username=RUNTIME_USERNAME)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


class ExecutionKeys:
    """``engine.runtimes.CredentialIssuer`` backed by ``AccessKey`` rows."""

    def issue(self, execution_arn: str, expires_at: datetime) -> tuple[str, str]:
        secret = new_secret_access_key()
        key = AccessKey(user=_runtime_user(), execution_arn=execution_arn, expires_at=expires_at)
        key.set_secret(secret)
        key.save()
        stale = timezone.now() - KEEP_EXPIRED
        AccessKey.objects.exclude(execution_arn="").filter(expires_at__lt=stale).delete()
        return key.access_key_id, secret

    def rebind(self, access_key_id: str, execution_arn: str, expires_at: datetime) -> None:
        keys = AccessKey.objects.filter(access_key_id=access_key_id).exclude(execution_arn="")
        keys.update(execution_arn=execution_arn, expires_at=expires_at)
