"""The broker's own count of messages, for tests that check what the engine sent."""

from __future__ import annotations

import redis
from django.conf import settings


def redis_client(url: str | None = None) -> redis.Redis:
    """A client of the Redis broker at ``url`` (default: Celery's). kombu names a unix socket (the
    embedded broker) ``redis+socket://``, which redis-py calls ``unix://``."""
    return redis.Redis.from_url((url or settings.CELERY_BROKER_URL).replace("redis+socket://", "unix://", 1))


def queued_messages(queue: str) -> int:
    """Messages waiting in ``queue``: kombu's redis transport keeps a queue as lists, one per priority."""
    client = redis_client()
    return sum(int(client.llen(key)) for key in client.scan_iter(match=f"{queue}*") if client.type(key) == b"list")
