"""Lab tests read and write the session's real database (the one the worker uses), not a test copy."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session", autouse=True)
def _real_database(django_db_blocker: Any) -> Iterator[None]:
    # pytest-django's django_db mark would give each test a separate, transaction-wrapped copy
    # that the Celery worker cannot see; the lab's end-to-end tests need the shared database.
    with django_db_blocker.unblock():
        yield


@pytest.fixture(scope="module")
def ts_stack(stack: Any, web_server: str) -> Any:
    """The worker, restarted so that its Node runtime processes (the TypeScript demos) checkpoint
    through this session's web server."""
    import os

    os.environ["DURABLE_API_URL"] = web_server
    stack.stop_worker()
    stack.start_worker()
    return stack
