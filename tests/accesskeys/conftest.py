"""A real web server (Waitress, in a thread) with test-only signed routes; the wire tests sign against
`make run`'s own Gunicorn (tests/wire/conftest.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.wsgi import get_wsgi_application
from django.test import override_settings
from waitress.server import create_server

from accesskeys import services

PASSWORD = "correct horse battery staple"
# One attempt: a rejected signature must surface as the first response, not after retries.
NO_RETRIES = Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=30)


@pytest.fixture(scope="session", autouse=True)
def _real_database(django_db_blocker: Any) -> Iterator[None]:
    """The server threads and the tests share the session's real database (no rollback)."""
    with django_db_blocker.unblock():
        yield


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    settings.STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns without it
    with override_settings(ROOT_URLCONF="tests.accesskeys.urls"):
        wsgi = create_server(get_wsgi_application(), host="127.0.0.1", port=0, threads=4)
        thread = threading.Thread(target=wsgi.run, name="waitress-accesskeys", daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{wsgi.effective_port}"
        finally:
            wsgi.close()
            thread.join(timeout=5)


def make_user(name: str, *, staff: bool = False) -> Any:
    import uuid

    return get_user_model().objects.create_user(
        username=f"{name}-{uuid.uuid4().hex[:8]}", password=PASSWORD, is_staff=staff
    )


@pytest.fixture
def owner() -> Any:
    return make_user("keyholder")


@pytest.fixture
def key(owner: Any) -> services.NewAccessKey:
    return services.access_key_create(user=owner)


def lambda_client(url: str, key_id: str, secret: str, **config: Any) -> Any:
    return boto3.client(
        "lambda",
        endpoint_url=url,
        region_name="eu-west-3",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=NO_RETRIES.merge(Config(**config)) if config else NO_RETRIES,
    )
