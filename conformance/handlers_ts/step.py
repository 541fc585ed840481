"""How the driver runs the TypeScript 'step' handlers (step.ts): requirement id → export."""

from __future__ import annotations

from conformance.runner import Spec

SPECS: dict[str, Spec] = {
    "1-1": Spec("stepBasic"),
    "1-2": Spec("stepNamed"),
    "1-3": Spec("stepSequential"),
    "1-4": Spec("stepComplexResult"),
    "1-5": Spec("stepUndefinedResult"),
    "1-6": Spec("stepCustomSerdes"),
    "1-7": Spec("stepWithLogger"),
    "1-8": Spec("stepThenWait"),
    "1-9": Spec("replaySkipsSucceededStep"),
    "1-10": Spec("replayRethrowsFailedStep"),
    "1-11": Spec("retryThenSucceed"),
    "1-12": Spec("retryExhaustion"),
    # The default strategy waits up to 5 s, then up to 10 s; the scale only shortens the real sleep.
    "1-13": Spec("defaultRetryStrategy", time_scale=0.1),
    "1-14": Spec("customBackoff"),
    "1-15": Spec("retryOnTransient"),
    "1-16": Spec("noRetryOnTransient"),
    "1-17": Spec("atMostOnceNoRetry"),
    "1-18": Spec("atMostOnceWithRetry"),
    "1-19": Spec("failsPermanently"),
    "1-20": Spec("errorCaught"),
}
