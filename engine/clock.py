"""What the engine takes for "now": the wall clock, or a test's fake one (engine.store.memory).

The duties, the invoker and the stores read it through ``now()``; only a test changes it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime


def _wall_clock() -> datetime:
    return datetime.now(UTC)


_clock: Callable[[], datetime] = _wall_clock


def now() -> datetime:
    return _clock()


def set_clock(clock: Callable[[], datetime] | None) -> Callable[[], datetime]:
    """Make ``clock`` what the engine reads as now (None: the wall clock); return the one replaced."""
    global _clock
    previous, _clock = _clock, clock or _wall_clock
    return previous
