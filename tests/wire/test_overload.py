"""A wire request that finds the database's connections all taken gets AWS's throttling error."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from psycopg_pool import PoolTimeout

from tests.wire.conftest import MISSING_ARN_PATH


def test_exhausted_connection_pool_is_too_many_requests(wire_user: Any) -> None:
    client = Client(raise_request_exception=False)
    connection.close()  # this thread's connection goes back to the pool, to be taken below
    pool = connection.pool
    held, timeout = [], pool.timeout
    try:
        while True:
            try:
                held.append(pool.getconn(timeout=0.5))
            except PoolTimeout:
                break
        pool.timeout = 0.5
        response = client.get(MISSING_ARN_PATH)
    finally:
        pool.timeout = timeout
        for conn in held:
            pool.putconn(conn)
    assert (response.status_code, response["x-amzn-ErrorType"]) == (429, "TooManyRequestsException")
    assert response["Retry-After"].isdigit()
    assert "retry" in json.loads(response.content)["Message"]


class UnreachableBroker:
    """The engine's dispatcher when the broker refuses connections."""

    def invoke(self, execution_id: int, timeout: float) -> None:
        from kombu.exceptions import OperationalError

        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    def call_plain(self, call: Any) -> None:
        self.invoke(0, 0)


def test_a_start_while_the_broker_is_down_is_recorded_and_answered(
    wire_user: Any, make_function: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import engine
    from engine.duties.unit import current_dispatcher, set_dispatcher
    from wire import auth

    monkeypatch.setattr(auth, "request_user", lambda request: wire_user)  # in process: no signature to check

    name = make_function("tests.handlers.engine_sdk.echo")
    saved = current_dispatcher()
    engine.configure(dispatcher=UnreachableBroker())
    try:
        response = Client(raise_request_exception=False).post(
            f"/2015-03-31/functions/{name}/invocations",
            data=b"{}",
            content_type="application/json",
            headers={"X-Amz-Invocation-Type": "Event", "X-Amz-Durable-Execution-Name": "broker-down"},
        )
    finally:
        set_dispatcher(saved)
    # The engine keeps the start and its scheduler re-sends the message: the client is told it started.
    assert response.status_code == 202, response.content
    arn = response["X-Amz-Durable-Execution-Arn"]
    assert engine.client().get_durable_execution(DurableExecutionArn=arn)["DurableExecutionName"] == "broker-down"
