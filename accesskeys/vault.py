"""Secrets kept encrypted at rest, readable again only with the site's SECRET_KEY.

SigV4 is an HMAC keyed by the secret access key, so the server must hold the secret itself to
recompute a signature: a one-way hash (as for passwords) cannot verify one. The secret is
therefore stored encrypted with Fernet (PyCA ``cryptography``: AES-128-CBC plus HMAC-SHA256,
authenticated, versioned tokens) rather than any cipher assembled here. The Fernet key is
derived from Django's SECRET_KEY with HKDF-SHA256 and a purpose label, so no new setting is
needed, a database dump alone reveals no secret, and the derived key is useless for anything
else SECRET_KEY signs. SECRET_KEY_FALLBACKS still decrypt (MultiFernet), so a key rotation done
the Django way keeps existing access keys working; without a fallback they stop verifying.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

PURPOSE = b"durable-lab accesskeys secret-at-rest v1"

__all__ = ["InvalidToken", "decrypt", "encrypt"]


def _fernet_for(secret_key: str) -> Fernet:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=PURPOSE)
    return Fernet(base64.urlsafe_b64encode(hkdf.derive(secret_key.encode())))


def _box() -> MultiFernet:
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet([_fernet_for(key) for key in keys])


def encrypt(plaintext: str) -> str:
    return _box().encrypt(plaintext.encode()).decode("ascii")


def decrypt(token: str) -> str:
    """Return the plaintext; raise ``InvalidToken`` if no current or fallback key opens it."""
    return _box().decrypt(token.encode("ascii")).decode()
