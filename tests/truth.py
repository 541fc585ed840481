"""The invariant checker as a test helper: call ``assert_truthful`` after a demo, comparison or fault."""

from __future__ import annotations

from typing import Any

from engine import invariants, timeline

# Rules a test may expect to be broken (none today: pass ``known=`` to name one).
KNOWN_VIOLATIONS: tuple[str, ...] = ()


def assert_truthful(data_or_arn: dict[str, Any] | str, *, known: tuple[str, ...] = KNOWN_VIOLATIONS) -> None:
    """Fail with every broken rule of the read model (a timeline dict, or an execution's ARN)."""
    data = timeline.execution_timeline(data_or_arn) if isinstance(data_or_arn, str) else data_or_arn
    found = [v for v in invariants.violations(data) if not v.startswith(tuple(f"{code}:" for code in known))]
    assert found == [], "\n".join(found)
