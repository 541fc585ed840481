"""How the driver runs the TypeScript 'wait' handlers (wait.ts): requirement id → export."""

from __future__ import annotations

from conformance.runner import Spec

SPECS: dict[str, Spec] = {
    "2-1": Spec("waitBasic"),
    "2-2": Spec("waitNamed"),
    "2-3": Spec("waitSequential"),
    # 2-4 and 2-5 only check the suspension; the driver stops the execution afterwards.
    "2-4": Spec("waitMinutes"),
    "2-5": Spec("waitHours", execution_timeout=7200),
}
