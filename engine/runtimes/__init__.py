"""Functions that run in their own runtime process, as Lambda runs each function in its sandbox.

A function with code (``Code.ZipFile``) and a ``Runtime`` runs out of the worker: the invocation's
Celery task hands its input to a runtime process (``engine.runtimes.process``, the protocol in
RUNTIME_PROTOCOL.md) and ends the invocation with what comes back, through the same end duty as
the in-worker path. The runtime table is pluggable: ``register_runtime`` maps a Lambda runtime
name to the command that starts its bootstrap.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

HERE = Path(__file__).resolve().parent
PYTHON_BOOTSTRAP = HERE / "python_bootstrap.py"
# The function's environment variable naming the Python interpreter its handler runs with (a
# virtual environment's bin/python): a plain variable every client can set (boto3 refuses
# fields its model lacks), kept per function like the rest of its configuration.
PYTHON_VARIABLE = "DURABLE_PYTHON"
DEFAULT_API_URL = "http://127.0.0.1:8000"


class RuntimeUnavailable(Exception):
    """The runtime's executable is not configured on this worker."""


@dataclass(frozen=True)
class Runtime:
    """How to start one Lambda runtime: ``command(environment)`` gives the argv of its bootstrap."""

    name: str
    command: Callable[[Mapping[str, str]], list[str]]


def _python_command(environment: Mapping[str, str]) -> list[str]:
    return [environment.get(PYTHON_VARIABLE) or sys.executable, "-u", str(PYTHON_BOOTSTRAP)]


def _node_command(environment: Mapping[str, str]) -> list[str]:
    from engine.runtimes import node

    if settings.node:
        return [settings.node, str(node.bootstrap())]
    try:
        return node.command()
    except node.NodeRuntimeMissing as exc:
        raise RuntimeUnavailable(f"nodejs22.x needs a Node 22 binary (DURABLE_NODE): {exc}") from exc


RUNTIMES: dict[str, Runtime] = {}


def register_runtime(name: str, command: Callable[[Mapping[str, str]], list[str]]) -> None:
    RUNTIMES[name] = Runtime(name, command)


for _version in ("python3.11", "python3.12", "python3.13"):
    register_runtime(_version, _python_command)
register_runtime("nodejs22.x", _node_command)


def runtime_names() -> list[str]:
    return sorted(RUNTIMES)


class CredentialIssuer(Protocol):
    """Makes the access key a runtime process signs its wire-API calls with: valid for one
    execution's checkpoints and state only, until ``expires_at``. A warm process keeps its key
    (the protocol gives it at start); ``rebind`` moves the key to the execution the process runs
    next, so at any moment it reaches that one execution only."""

    def issue(self, execution_arn: str, expires_at: datetime) -> tuple[str, str]: ...

    def rebind(self, access_key_id: str, execution_arn: str, expires_at: datetime) -> None: ...


@dataclass
class Settings:
    api_url: str | None = None
    node: str | None = None
    credentials: CredentialIssuer | None = None

    def wire_url(self) -> str:
        return self.api_url or os.environ.get("DURABLE_API_URL") or DEFAULT_API_URL


settings = Settings()


def configure(
    *, api_url: str | None = None, node: str | None = None, credentials: CredentialIssuer | None = None
) -> None:
    """Set where runtime processes reach the wire API, the Node binary and the credential issuer."""
    if api_url is not None:
        settings.api_url = api_url
    if node is not None:
        settings.node = node
    if credentials is not None:
        settings.credentials = credentials


__all__ = [
    "RUNTIMES",
    "CredentialIssuer",
    "Runtime",
    "RuntimeUnavailable",
    "configure",
    "register_runtime",
    "runtime_names",
    "settings",
]
