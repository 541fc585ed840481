"""Where an invocation runs (issue 19): the host id and the lease that says a host is alive.

Every worker process registers in ``durable_worker``; the Celery parent of each worker renews
its processes' ``heartbeat_at`` (the host's lease). A host none of whose processes renewed
within the lease is lost: another host records its running invocations ``Runtime.ExitError``
and invokes them again.
"""

from __future__ import annotations

import os
import socket

DEFAULT_LEASE_SECONDS = 10.0


def host_id() -> str:
    """This host's id: ``DURABLE_HOST_ID``, or the machine's hostname. Two worker "hosts" on one
    machine (the multi-host test) differ by it; so does the record of where an invocation ran."""
    return os.environ.get("DURABLE_HOST_ID") or socket.gethostname()


def lease_seconds() -> float:
    """How long a host may go without renewing its lease before it counts as lost
    (``DURABLE_HOST_LEASE_SECONDS``, default 10)."""
    raw = os.environ.get("DURABLE_HOST_LEASE_SECONDS") or ""
    try:
        value = float(raw) if raw else DEFAULT_LEASE_SECONDS
    except ValueError:
        raise ValueError(f"DURABLE_HOST_LEASE_SECONDS must be a number of seconds, got {raw!r}") from None
    if not 1.0 <= value <= 3600.0:
        raise ValueError(f"DURABLE_HOST_LEASE_SECONDS must be between 1 and 3600, got {raw!r}")
    return value


def heartbeat_seconds() -> float:
    """How often a worker renews its lease: four times per lease, so one late beat is no loss."""
    return lease_seconds() / 4
