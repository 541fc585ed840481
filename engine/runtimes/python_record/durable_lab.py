"""Durable Lab in a Python runtime process: the step-body record, and ``record_effect`` for handlers.

``python_bootstrap.py`` puts this directory on ``sys.path`` (its ``.dist-info`` names the entry
point the SDK loads through ``DURABLE_EXECUTION_PLUGINS=durable-lab-record``) and opens the
channel. Each step body's start and end is sent to the invoker as ``{"record": {...}}`` on the
answer pipe, and the body waits for the invoker's answer on stdin: the invoker writes it to the
invocation's journal, and kills this process instead if an armed fault is due there. An SDK that
cannot host the plugin runs its handlers unrecorded.

A handler counts a side effect as an in-worker handler does with ``engine.effects.record``::

    from durable_lab import record_effect
    record_effect("payment", order_id, idempotency_key=key)  # {"performed", "duplicate", ...}
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from typing import Any

from aws_durable_execution_sdk_python.plugin import (
    DurableInstrumentationPlugin,
    OperationType,
    UserFunctionEndInfo,
    UserFunctionStartInfo,
)

# (send a record, read the answer line); set by the bootstrap. None: not in a runtime process.
channel: tuple[Callable[[dict[str, Any]], None], Callable[[], str]] | None = None
_lock = threading.Lock()  # step bodies of parallel branches run on threads: one exchange at a time


class EffectError(Exception):
    """The invoker refused the effect (what it says is why)."""


def _exchange(record: dict[str, Any]) -> dict[str, Any]:
    if channel is None:
        return {}
    send, receive = channel
    with _lock:
        # What the body printed so far reaches the invoker first: its log lines are the body's.
        sys.stdout.flush()
        sys.stderr.flush()
        send({"record": record})
        answer = json.loads(receive() or "{}")
    return answer if isinstance(answer, dict) else {}


def record_effect(kind: str, key: str, idempotency_key: str | None = None) -> dict[str, bool]:
    """Record a side effect of the running step (``engine.effects.record``'s rules); return
    ``{"performed", "duplicate", "idempotency_key_used"}``."""
    if channel is None:
        raise EffectError("record_effect() must be called inside a handler Durable Lab runs")
    answer = _exchange({"t": "effect", "kind": kind, "key": key, "idempotency_key": idempotency_key})
    if "effect" not in answer:
        raise EffectError(str(answer.get("error") or "the invoker did not record the effect"))
    return dict(answer["effect"])


class RecordPlugin(DurableInstrumentationPlugin):
    def on_user_function_start(self, info: UserFunctionStartInfo) -> None:
        if info.operation_type == OperationType.STEP:
            record = {"t": "body_start", "op_id": info.operation_id, "name": info.name, "attempt": info.attempt or 1}
            _exchange(record)

    def on_user_function_end(self, info: UserFunctionEndInfo) -> None:
        if info.operation_type == OperationType.STEP:
            outcome = info.outcome.value.lower()
            _exchange({"t": "body_end", "op_id": info.operation_id, "name": info.name, "outcome": outcome})


class RecordPluginFactory:
    def create_plugin(self, info: Any) -> DurableInstrumentationPlugin:
        return RecordPlugin()


plugin_factory = RecordPluginFactory()
