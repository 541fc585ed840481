"""Overload answers: a request that cannot reach the database or the broker gets a 503, not a 500."""

from __future__ import annotations

import logging
from collections.abc import Callable

import psycopg
from django.db import OperationalError as DjangoOperationalError
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from kombu.exceptions import OperationalError as BrokerUnreachable
from psycopg_pool import PoolTimeout, TooManyRequests

log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 5

# What an overloaded or restarting database raises: no free connection in a pool within its
# timeout, a pool's waiting queue full, or PostgreSQL refusing or dropping the connection
# ("too many clients already", "the database system is starting up", a restart). The request
# did nothing durable, so trying again later is the right advice.
OVERLOAD_ERRORS: tuple[type[BaseException], ...] = (
    PoolTimeout,
    TooManyRequests,
    psycopg.OperationalError,
    DjangoOperationalError,
    # The broker is down: unlike the errors above, what the request stored is kept (an
    # execution is started, its message is re-sent by the scheduler), and the page says so.
    BrokerUnreachable,
)


def is_overload(error: BaseException | None) -> bool:
    return isinstance(error, OVERLOAD_ERRORS)


def overload_response(request: HttpRequest | None, error: BaseException) -> HttpResponse:
    """Return a 503 page that asks the client to retry in a few seconds."""
    broker = isinstance(error, BrokerUnreachable)
    log.warning("%s unavailable for %s: %s", "broker" if broker else "database", getattr(request, "path", "?"), error)
    body = render_to_string("503.html", {"retry_after": RETRY_AFTER_SECONDS, "broker": broker})
    response = HttpResponse(body, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class DatabaseOverloadMiddleware:
    """Turn a view's database overload error into a 503 with Retry-After."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        return overload_response(request, exception) if is_overload(exception) else None
