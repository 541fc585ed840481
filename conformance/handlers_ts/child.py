"""How the driver runs the TypeScript 'child' handlers (child.ts): requirement id → export."""

from __future__ import annotations

from conformance.runner import Spec

SPECS: dict[str, Spec] = {
    "3-1": Spec("childBasic"),
    "3-2": Spec("childNamed"),
    "3-3": Spec("childSequentialSteps"),
    "3-4": Spec("childError"),
    "3-5": Spec("childErrorCaught"),
    "3-6": Spec("childNested"),
    "3-7": Spec("childStepRetry"),
    "3-8": Spec("childRetryExhausted"),
    "3-9": Spec("childReplayCached"),
    "3-10": Spec("childStepAndWait"),
    "3-11": Spec("childLargePayload"),
    "3-12": Spec("childInterrupted"),
    "3-13": Spec("childWaitOnly"),
    "3-14": Spec("childCustomSerdes"),
    "3-15": Spec("childErrorDirect"),
    "3-16": Spec("childReturnsNull"),
    "3-17": Spec("childLoggerOnly"),
    "3-18": Spec("childMixedReplays"),
}
