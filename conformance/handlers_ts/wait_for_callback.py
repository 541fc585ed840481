"""How the driver runs the TypeScript 'wait_for_callback' handlers (wait_for_callback.ts)."""

from __future__ import annotations

from conformance.runner import Spec

SPECS: dict[str, Spec] = {
    "7-1": Spec("waitForCallbackBasic"),
    "7-2": Spec("waitForCallbackNamed"),
    "7-3": Spec("waitForCallbackAnonymous"),
    "7-4": Spec("waitForCallbackExternalFailure"),
    "7-5": Spec("waitForCallbackTimeout"),
    "7-6": Spec("waitForCallbackFailureCaught"),
    "7-7": Spec("waitForCallbackSubmitterFails"),
    "7-8": Spec("waitForCallbackInChild"),
    "7-9": Spec("twoWaitForCallbacks"),
    "7-10": Spec("waitForCallbackAfterWaitAndStep"),
    "7-11": Spec("waitForCallbackJsonResult"),
    "7-12": Spec("waitForCallbackHeartbeatTimeout"),
    "7-13": Spec("waitForCallbackHeartbeatThenSuccess"),
    "7-14": Spec("waitForCallbackTimeoutCaught"),
    "7-15": Spec("waitForCallbackEmptyResult"),
}
