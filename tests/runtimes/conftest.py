"""Fixtures of the runtime tests: the engine's own (throwaway functions, a dispatcher that only
records), the wire API's (the real web server the runtime's SDK checkpoints through), and functions
made from source files that the real worker runs in runtime processes."""

from __future__ import annotations

import io
import os
import uuid
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest

from tests.engine.conftest import client, functions, no_scheduler, recorder
from tests.wire import conftest as wire_fixtures

__all__ = ["client", "functions", "no_scheduler", "recorder"]

# The wire API's fixtures, shared with these tests (the same web server and signing key).
ROLE = wire_fixtures.ROLE
_real_database = wire_fixtures._real_database
wire_user = wire_fixtures.wire_user
wire_server = wire_fixtures.wire_server
lambda_client = wire_fixtures.lambda_client


@pytest.fixture(scope="session")
def runtime_stack(stack: Any, wire_server: str) -> Iterator[Any]:
    """The session's worker, restarted so that its runtime processes reach this web server."""
    os.environ["DURABLE_API_URL"] = wire_server
    stack.stop_worker()
    stack.start_worker()
    yield stack


def zipped(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


@pytest.fixture
def code_function(lambda_client: Any, runtime_stack: Any) -> Any:
    """Create a function from source files through boto3's CreateFunction (Code.ZipFile)."""

    def create(files: dict[str, str], handler: str = "app.handler", **fields: Any) -> str:
        name = f"rt-{uuid.uuid4().hex[:10]}"
        fields.setdefault("Timeout", 20)
        fields.setdefault("DurableConfig", {"ExecutionTimeout": 300, "RetentionPeriodInDays": 1})
        lambda_client.create_function(
            FunctionName=name,
            Runtime=fields.pop("Runtime", "python3.11"),
            Role=ROLE,
            Handler=handler,
            Code={"ZipFile": zipped(files)},
            **fields,
        )
        return name

    return create
