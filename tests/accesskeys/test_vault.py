"""Secrets at rest: Fernet under a key derived from SECRET_KEY; a rotation with fallbacks keeps keys working."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.conf import settings
from django.test import RequestFactory, override_settings

from accesskeys import services, sigv4, vault
from tests.accesskeys.conftest import make_user


def test_ciphertext_hides_the_secret_and_round_trips() -> None:
    token = vault.encrypt("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    assert "wJalrXUtnFEMI" not in token and token.startswith("gAAAA")  # a Fernet token
    assert vault.decrypt(token) == "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def test_rotated_secret_key_needs_the_old_one_as_a_fallback() -> None:
    made = services.access_key_create(user=make_user("vault"))
    old = settings.SECRET_KEY
    with override_settings(SECRET_KEY="a-new-secret-key-" + "x" * 40, SECRET_KEY_FALLBACKS=[old]):
        assert made.key.secret() == made.secret
    with (
        override_settings(SECRET_KEY="a-new-secret-key-" + "x" * 40, SECRET_KEY_FALLBACKS=[]),
        pytest.raises(vault.InvalidToken),
    ):
        made.key.secret()


def test_a_key_whose_secret_no_longer_decrypts_is_unrecognized() -> None:
    made = services.access_key_create(user=make_user("vault"))
    request = RequestFactory().get(
        "/2015-03-31/functions",
        HTTP_AUTHORIZATION=(
            f"AWS4-HMAC-SHA256 Credential={made.key.access_key_id}/20261204/us-east-1/lambda/aws4_request, "
            f"SignedHeaders=host;x-amz-date, Signature={'0' * 64}"
        ),
        HTTP_X_AMZ_DATE="20261204T000000Z",
    )
    with (
        override_settings(SECRET_KEY="another-key-" + "y" * 40, SECRET_KEY_FALLBACKS=[]),
        pytest.raises(sigv4.SignatureRejected) as caught,
    ):
        sigv4.authenticate(request, clock=lambda: datetime(2026, 12, 4, 0, 5, tzinfo=UTC))
    assert caught.value.code == "UnrecognizedClientException"
