"""Fixtures shared by the dashboard and browser tests (imported by both conftest files)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.dashboard.handlers import TEST_FUNCTIONS

PASSWORD = "correct horse battery staple"

# WhiteNoise warns on every request when STATIC_ROOT is missing (no collectstatic in tests).
settings.STATIC_ROOT.mkdir(parents=True, exist_ok=True)


@pytest.fixture(autouse=True)
def _real_database(django_db_blocker: Any) -> Iterator[None]:
    """Pages, engine and worker share the session's real database: no per-test test DB, no rollback."""
    with django_db_blocker.unblock():
        yield


def make_user(*, staff: bool = False, operate: bool = False) -> Any:
    user = get_user_model().objects.create_user(username=f"u-{uuid.uuid4().hex[:8]}", password=PASSWORD, is_staff=staff)
    if operate:
        user.user_permissions.add(Permission.objects.get(codename="operate_executions"))
    return user


@pytest.fixture
def operator() -> Any:
    return make_user(staff=True)


@pytest.fixture
def viewer() -> Any:
    return make_user()


@pytest.fixture
def op_client(operator: Any) -> Client:
    client = Client()
    client.force_login(operator)
    return client


@pytest.fixture
def viewer_client(viewer: Any) -> Client:
    client = Client()
    client.force_login(viewer)
    return client


@pytest.fixture(scope="session")
def dash_functions(stack: Any, django_db_blocker: Any) -> dict[str, str]:
    """Register the dashboard's test handlers with the engine (idempotent across reruns)."""
    import engine

    lam = engine.client()
    with django_db_blocker.unblock():
        for name, handler in TEST_FUNCTIONS.items():
            config = {
                "Handler": handler,
                "Timeout": 30,
                "DurableConfig": {"ExecutionTimeout": 600, "RetentionPeriodInDays": 1},
            }
            try:
                lam.create_function(FunctionName=name, **config)
            except lam.exceptions.ResourceConflictException:
                lam.update_function_configuration(FunctionName=name, **config)
    return TEST_FUNCTIONS


@dataclass
class QueryCount:
    django: int = 0
    engine: int = 0
    sql: list[str] = field(default_factory=list)


@pytest.fixture
def count_queries(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Count SQL a request sends: Django's connection, plus the engine's own psycopg pool.

    The engine reads through psycopg cursors with server-side binding (Django's own queries go
    through ``ClientCursor``s and are counted by Django); wrapping ``Cursor.execute`` counts, it
    does not fake.
    """

    @contextmanager
    def counting() -> Iterator[QueryCount]:
        result = QueryCount()
        original = psycopg.Cursor.execute

        def execute(self: psycopg.Cursor, query: Any, *args: Any, **kwargs: Any) -> Any:
            if not isinstance(self, psycopg.ClientCursor):
                result.engine += 1
                result.sql.append(str(query)[:120])
            return original(self, query, *args, **kwargs)

        monkeypatch.setattr(psycopg.Cursor, "execute", execute)
        with CaptureQueriesContext(connection) as captured:
            yield result
        monkeypatch.setattr(psycopg.Cursor, "execute", original)
        result.django = len(captured.captured_queries)
        result.sql += [q["sql"][:120] for q in captured.captured_queries]

    return counting
