"""The engine's read models on Django's connection, so a dashboard page reads through one connection.

``ReadThroughDjangoMiddleware`` lends it for each request; elsewhere (Celery tasks, the CLI, a
notebook) the engine keeps its own pool.

Django's cursors are lent with the engine's row shape (dicts unless asked otherwise) and its JSON
parsing (Django's own connection hands jsonb back as text); queries go through Django's cursor
wrapper, so Django's query log and ``assertNumQueries`` count them like any ORM query.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection
from django.http import HttpRequest, HttpResponse
from psycopg.rows import RowFactory, dict_row
from psycopg.types.json import set_json_loads

from engine import db


class DjangoReadConnection:
    """The part of ``psycopg.Connection`` the engine's read models use, on Django's connection."""

    def cursor(self, row_factory: RowFactory[Any] = dict_row) -> Any:
        wrapper = connection.cursor()
        raw = wrapper.cursor
        raw.row_factory = row_factory
        set_json_loads(db.load_json, raw)
        return wrapper

    def execute(self, query: str, params: Any = None) -> Any:
        cursor = self.cursor()
        cursor.execute(query, params)
        return cursor


@contextmanager
def django_reader() -> Iterator[DjangoReadConnection]:
    yield DjangoReadConnection()


class ReadThroughDjangoMiddleware:
    """For the length of each request, the engine's read models read through Django's connection."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with db.lent(django_reader):
            return self.get_response(request)
