"""How the driver runs the TypeScript 'callback' handlers (callback.ts): requirement id → export."""

from __future__ import annotations

from conformance.runner import Spec

SPECS: dict[str, Spec] = {
    "4-1": Spec("callbackBasic"),
    "4-2": Spec("callbackNamed"),
    "4-3": Spec("callbackTimeout"),
    "4-4": Spec("callbackHeartbeatTimeout"),
    "4-5": Spec("callbackHeartbeatThenSuccess"),
    "4-6": Spec("callbackExternalFailure"),
    "4-7": Spec("callbackStepThenFailure"),
    "4-8": Spec("callbackStepThenTimeout"),
    "4-9": Spec("callbackDuringWaitSucceeds"),
    "4-10": Spec("callbackDuringWaitFails"),
    "4-11": Spec("callbackTimesOutDuringWait"),
    "4-12": Spec("callbackThenWait"),
    "4-13": Spec("callbackFailureCaughtThenWait"),
    "4-14": Spec("callbackTimeoutCaughtThenWait"),
    "4-15": Spec("callbackTypedDeserializer"),
    "4-16": Spec("callbackNumberDeserializer"),
    "4-17": Spec("twoCallbacksSequential"),
    "4-18": Spec("twoCallbacksInOrder"),
    "4-19": Spec("twoCallbacksReversed"),
}
