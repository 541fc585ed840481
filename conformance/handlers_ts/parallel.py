"""How the driver runs the TypeScript 'parallel' handlers (parallel.ts): requirement id → export."""

from __future__ import annotations

from conformance.runner import Spec

SPECS: dict[str, Spec] = {
    "8-1": Spec("parallelBasic"),
    "8-2": Spec("parallelUnnamed"),
    "8-3": Spec("parallelNamedBranches"),
    "8-4": Spec("parallelHeterogeneous"),
    "8-5": Spec("parallelEmpty"),
    "8-6": Spec("parallelFailFast"),
    "8-7": Spec("parallelThrowIfError"),
    "8-8": Spec("parallelMinSuccessful"),
    "8-9": Spec("parallelToleratedFailure"),
    "8-10": Spec("parallelToleranceExceeded"),
    "8-11": Spec("parallelConcurrent"),
    "8-12": Spec("parallelFlat"),
    "8-13": Spec("parallelToleratedPercentage"),
    "8-14": Spec("parallelReplay"),
    "8-15": Spec("parallelItemSerdes"),
    "8-16": Spec("parallelAllFail"),
    "8-17": Spec("parallelMinNotReached"),
    "8-18": Spec("parallelCombinedCompletion"),
    "8-19": Spec("parallelBadConcurrency"),
    "8-20": Spec("parallelAccessors"),
    "8-21": Spec("parallelNested"),
    "8-22": Spec("parallelPercentageBoundary"),
}
