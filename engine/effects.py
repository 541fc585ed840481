"""Side effects you can count: handlers call ``record`` where they charge, email or write.

Each call stores an effect row tied to the execution, operation, attempt and invocation that
performed it, so the dashboard can show a duplicate charge that at-least-once semantics
caused, or that an idempotency key prevented.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine import db, journal
from engine.duties.unit import utcnow
from engine.errors import EngineError
from engine.sql import Q


@dataclass(frozen=True)
class EffectResult:
    """What happened: ``performed`` is False when the idempotency key was already used."""

    performed: bool
    duplicate: bool
    idempotency_key_used: bool


class NotInInvocationError(EngineError):
    """``record`` was called outside an invocation run by the engine."""


def record(kind: str, key: str, idempotency_key: str | None = None) -> EffectResult:
    """Record a side effect of the running step; return whether it really happened and was a duplicate.

    Without an idempotency key every call is a real effect, and a second one with the same
    (execution, kind, key) is a duplicate. With a key, a call whose key was already used for this
    ``kind`` is not performed again, as an idempotent payment API would answer.
    """
    current = journal.current()
    if current is None or current.execution_id is None:
        raise NotInInvocationError("engine.effects.record() must be called inside a handler the engine runs")
    if not kind or not key:
        raise ValueError("kind and key must be non-empty strings")
    op_id, attempt = journal.current_step()
    with db.transaction() as conn:
        # Serialise concurrent effects of one kind+key, so two racing duplicates are both seen.
        conn.execute(Q.lock_effect_key, {"lock_key": f"{kind}\x1f{idempotency_key or key}"})
        used = (
            idempotency_key is not None
            and conn.execute(Q.idempotency_key_used, {"kind": kind, "idempotency_key": idempotency_key}).fetchone()
            is not None
        )
        duplicate = (
            not used
            and conn.execute(
                Q.effect_performed_before, {"execution_id": current.execution_id, "kind": kind, "key": key}
            ).fetchone()
            is not None
        )
        conn.execute(
            Q.record_effect,
            {
                "execution_id": current.execution_id,
                "op_id": op_id,
                "invocation_seq": current.invocation_seq,
                "attempt": attempt,
                "at": utcnow(),
                "kind": kind,
                "key": key[:256],
                "idempotency_key": idempotency_key,
                "performed": not used,
                "duplicate": duplicate,
            },
        )
    current.write({"t": "effect", "kind": kind, "key": key, "duplicate": duplicate, "performed": not used})
    return EffectResult(performed=not used, duplicate=duplicate, idempotency_key_used=used)
