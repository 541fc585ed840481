"""Signed approval links: a callback answered by whoever holds the link, with no login (seed 001).

A link is a ``django.core.signing`` token (a salted, timestamped HMAC under ``SECRET_KEY``) over
the callback id, the one action it may take, and when it expires: changing any of the three breaks
the signature. It expires with the callback's timeout. It is usable once because the engine's
answer duty accepts one answer per callback; a link adds no state of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core import signing

# Its own salt: no other signed value of the site (sessions, messages) can pass for a link.
SALT = "executions.callback-link"
ACTIONS = ("approve", "reject")
# A callback with no timeout still needs its links to die some day.
UNTIMED_LIFETIME = timedelta(days=7)
# A callback id is at most 128 characters, so a real token is well under this.
MAX_TOKEN_LENGTH = 1024


@dataclass(frozen=True)
class LinkClaim:
    """What a verified link allows: one action on one callback, until ``expires_at``."""

    callback_id: str
    action: str
    expires_at: datetime


class LinkError(Exception):
    """A link that answers nothing; ``status`` and ``title`` are what its page says."""

    status = 400
    title = "This link is not valid"


class TamperedLink(LinkError):
    status = 400
    title = "This link is not valid"


class ExpiredLink(LinkError):
    status = 410
    title = "This link has expired"

    def __init__(self, expires_at: datetime) -> None:
        super().__init__(f"It expired at {expires_at:%Y-%m-%d %H:%M:%S} UTC, when the request timed out.")
        self.expires_at = expires_at


def link_token(*, callback_id: str, action: str, deadline: datetime | None, now: datetime) -> str:
    """Return the signed token for ``action`` on the callback, expiring at its ``deadline``."""
    if action not in ACTIONS:
        raise ValueError(f"a link can only {' or '.join(ACTIONS)}, not {action!r}")
    expires_at = deadline or now + UNTIMED_LIFETIME
    return signing.dumps({"c": callback_id, "a": action, "e": int(expires_at.timestamp())}, salt=SALT)


def link_claim(token: str, *, now: datetime) -> LinkClaim:
    """Return what ``token`` allows, or raise :class:`TamperedLink` / :class:`ExpiredLink`."""
    invalid = TamperedLink("The link was changed or cut short: it does not carry a valid signature.")
    # Tokens are short ASCII; anything else never verifies, and a lone surrogate would not even encode.
    if not token.isascii() or len(token) > MAX_TOKEN_LENGTH:
        raise invalid
    try:
        payload = signing.loads(token, salt=SALT)
    except signing.BadSignature as exc:
        raise invalid from exc
    claim = _claim_of(payload)
    if now >= claim.expires_at:
        raise ExpiredLink(claim.expires_at)
    return claim


def _claim_of(payload: Any) -> LinkClaim:
    # Only this module signs under SALT, so a bad shape means SECRET_KEY leaked or the code changed.
    if (
        not isinstance(payload, dict)
        or not isinstance(payload.get("c"), str)
        or payload.get("a") not in ACTIONS
        or not isinstance(payload.get("e"), int)
    ):
        raise TamperedLink("The link does not say which request it answers.")
    return LinkClaim(payload["c"], payload["a"], datetime.fromtimestamp(payload["e"], tz=UTC))
