"""Handlers for the 'parallel' conformance suite (8-x), written from each requirement's text."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aws_durable_execution_sdk_python import BatchResult, DurableContext, ParallelBranch, durable_execution
from aws_durable_execution_sdk_python.config import CompletionConfig, Duration, NestingType, ParallelConfig
from aws_durable_execution_sdk_python.serdes import SerDes, SerDesContext

from conformance.runner import Spec

Branch = Callable[[DurableContext], Any]
# One branch at a time keeps the history's event order deterministic.
SEQUENTIAL = ParallelConfig(max_concurrency=1)


def returns(value: Any) -> Branch:
    """A branch that returns ``value`` directly, without a durable operation."""
    return lambda ctx: value


def steps(value: Any) -> Branch:
    """A branch whose single step returns ``value``."""
    return lambda ctx: ctx.step(lambda _: value, name="branch-step")


def fails(ctx: DurableContext) -> None:
    raise RuntimeError("branch failed on purpose")


def sequential(**completion: Any) -> ParallelConfig:
    return ParallelConfig(max_concurrency=1, completion_config=CompletionConfig(**completion))


def projection(result: BatchResult[Any]) -> dict[str, Any]:
    return {
        "completionReason": result.completion_reason.value,
        "status": result.status.value,
        "successCount": result.success_count,
        "failureCount": result.failure_count,
        "totalCount": result.total_count,
    }


@durable_execution
def parallel_basic(event: Any, context: DurableContext) -> list[Any]:
    """8-1: two branches with one step each, run one at a time."""
    result = context.parallel([steps("task-1"), steps("task-2")], name="parallel", config=SEQUENTIAL)
    return result.get_results()


@durable_execution
def parallel_unnamed(event: Any, context: DurableContext) -> list[Any]:
    """8-2: the branches-only form, without an operation name."""
    return context.parallel([returns("alpha"), returns("beta")], config=SEQUENTIAL).get_results()


@durable_execution
def parallel_named_branches(event: Any, context: DurableContext) -> list[Any]:
    """8-3: named-branch objects pairing a name with a function."""
    branches = [ParallelBranch(returns("one"), name="first"), ParallelBranch(returns("two"), name="second")]
    return context.parallel(branches, name="named", config=SEQUENTIAL).get_results()


@durable_execution
def parallel_heterogeneous(event: Any, context: DurableContext) -> list[Any]:
    """8-4: branches return a string, a number and an object."""
    branches = [returns("hello"), returns(42), returns({"k": "v"})]
    return context.parallel(branches, name="hetero", config=SEQUENTIAL).get_results()


@durable_execution
def parallel_empty(event: Any, context: DurableContext) -> list[Any]:
    """8-5: no branches at all."""
    return context.parallel([], name="empty").get_results()


@durable_execution
def parallel_fail_fast(event: Any, context: DurableContext) -> dict[str, Any]:
    """8-6: tolerated-failure-count=0 stops after branch 1 fails; branch 2 never starts."""
    branches = [returns("ok"), fails, returns("never")]
    result = context.parallel(branches, name="failfast", config=sequential(tolerated_failure_count=0))
    return projection(result)


@durable_execution
def parallel_throw_if_error(event: Any, context: DurableContext) -> list[Any]:
    """8-7: branch 0 fails; rethrowing it from the batch result fails the execution."""
    result = context.parallel([fails, returns("never")], name="throwing", config=sequential(tolerated_failure_count=0))
    result.throw_if_error()
    return result.get_results()


@durable_execution
def parallel_min_successful(event: Any, context: DurableContext) -> dict[str, Any]:
    """8-8: min-successful=2 completes after branches 0 and 1."""
    branches = [returns(f"m{i}") for i in range(4)]
    result = context.parallel(branches, name="min-successful", config=sequential(min_successful=2))
    full = projection(result)
    return {key: full[key] for key in ("completionReason", "successCount", "totalCount")}


@durable_execution
def parallel_tolerated(event: Any, context: DurableContext) -> dict[str, Any]:
    """8-9: one failure is tolerated, so all three branches run."""
    branches = [returns("a"), fails, returns("c")]
    return projection(context.parallel(branches, name="tolerated", config=sequential(tolerated_failure_count=1)))


def without_status(result: BatchResult[Any]) -> dict[str, Any]:
    full = projection(result)
    return {key: full[key] for key in ("completionReason", "successCount", "failureCount", "totalCount")}


@durable_execution
def parallel_tolerated_exceeded(event: Any, context: DurableContext) -> dict[str, Any]:
    """8-10: the second failure exceeds tolerated-failure-count=1; branch 2 never starts."""
    branches = [fails, fails, returns("never")]
    config = sequential(tolerated_failure_count=1)
    return without_status(context.parallel(branches, name="tolerated-exceeded", config=config))


@durable_execution
def parallel_concurrent(event: Any, context: DurableContext) -> list[Any]:
    """8-11: two branches at a time; results still come back in index order."""
    branches = [returns("r0"), returns("r1"), returns("r2")]
    return context.parallel(branches, name="concurrent", config=ParallelConfig(max_concurrency=2)).get_results()


@durable_execution
def parallel_flat(event: Any, context: DurableContext) -> list[Any]:
    """8-12: FLAT nesting: no branch contexts, the steps hang off the parallel context."""
    config = ParallelConfig(max_concurrency=1, nesting_type=NestingType.FLAT)
    return context.parallel([steps("fa"), steps("fb")], name="flat", config=config).get_results()


@durable_execution
def parallel_tolerated_percentage(event: Any, context: DurableContext) -> dict[str, Any]:
    """8-13: 2 of 4 failed (50%) exceeds 25%; branches 2 and 3 never start."""
    branches = [fails, fails, returns("c"), returns("d")]
    config = sequential(tolerated_failure_percentage=25)
    return without_status(context.parallel(branches, name="tolerated-pct", config=config))


def waits_then_returns(ctx: DurableContext) -> str:
    ctx.wait(Duration.from_seconds(2))
    return "b1"


@durable_execution
def parallel_replay(event: Any, context: DurableContext) -> list[Any]:
    """8-14: branch 1 suspends on a wait; the resume skips the succeeded branch 0."""
    return context.parallel([steps("b0"), waits_then_returns], name="replay", config=SEQUENTIAL).get_results()


class WrappingSerDes(SerDes[Any]):
    """Stores a value v as {"wrapped": v} and reads it back as v."""

    def serialize(self, value: Any, serdes_context: SerDesContext) -> str:
        return json.dumps({"wrapped": value})

    def deserialize(self, data: str, serdes_context: SerDesContext) -> Any:
        return json.loads(data)["wrapped"]


@durable_execution
def parallel_item_serdes(event: Any, context: DurableContext) -> list[Any]:
    """8-15: a per-branch serdes wraps each checkpointed result and unwraps it on read."""
    config = ParallelConfig(max_concurrency=1, item_serdes=WrappingSerDes())
    return context.parallel([returns("x"), returns("y")], name="serde", config=config).get_results()


@durable_execution
def parallel_all_fail(event: Any, context: DurableContext) -> dict[str, Any]:
    """8-16: every branch fails, all within tolerated-failure-count=3."""
    result = context.parallel([fails, fails, fails], name="all-fail", config=sequential(tolerated_failure_count=3))
    return projection(result)


@durable_execution
def parallel_min_not_reached(event: Any, context: DurableContext) -> dict[str, Any]:
    """8-17: min-successful=3 is never reached; all branches run."""
    branches = [returns("a"), fails, returns("c")]
    return projection(context.parallel(branches, name="min-not-reached", config=sequential(min_successful=3)))


@durable_execution
def parallel_combined_completion(event: Any, context: DurableContext) -> dict[str, Any]:
    """8-18: min-successful=3 with tolerated-failure-count=1; the tolerance is exceeded first."""
    branches = [fails, fails, returns("c"), returns("d")]
    config = sequential(min_successful=3, tolerated_failure_count=1)
    return without_status(context.parallel(branches, name="combined", config=config))


@durable_execution
def parallel_bad_concurrency(event: Any, context: DurableContext) -> list[Any]:
    """8-19: max-concurrency 0 is rejected before the parallel operation starts."""
    config = ParallelConfig(max_concurrency=0)
    return context.parallel([returns("a"), returns("b")], name="bad-concurrency", config=config).get_results()


@durable_execution
def parallel_accessors(event: Any, context: DurableContext) -> dict[str, Any]:
    """8-20: the projection comes from the batch result's accessors."""
    branches = [returns("a"), fails, returns("c")]
    result = context.parallel(branches, name="accessors", config=sequential(tolerated_failure_count=1))
    return {
        "hasFailure": result.has_failure,
        "successCount": len(result.succeeded()),
        "failureCount": len(result.failed()),
        "errorCount": len(result.get_errors()),
    }


def inner_parallel(ctx: DurableContext) -> list[Any]:
    return ctx.parallel([steps("i1"), steps("i2")], name="inner", config=SEQUENTIAL).get_results()


@durable_execution
def parallel_nested(event: Any, context: DurableContext) -> list[Any]:
    """8-21: the only outer branch runs an inner parallel of two steps."""
    return context.parallel([inner_parallel], name="outer", config=SEQUENTIAL).get_results()


@durable_execution
def parallel_percentage_boundary(event: Any, context: DurableContext) -> dict[str, Any]:
    """8-22: 1 of 4 failed is exactly 25%, which does not exceed the tolerance."""
    branches = [fails, returns("b"), returns("c"), returns("d")]
    config = sequential(tolerated_failure_percentage=25)
    return projection(context.parallel(branches, name="pct-boundary", config=config))


SPECS: dict[str, Spec] = {
    "8-1": Spec("parallel_basic"),
    "8-2": Spec("parallel_unnamed"),
    "8-3": Spec("parallel_named_branches"),
    "8-4": Spec("parallel_heterogeneous"),
    "8-5": Spec("parallel_empty"),
    "8-6": Spec("parallel_fail_fast"),
    "8-7": Spec("parallel_throw_if_error"),
    "8-8": Spec("parallel_min_successful"),
    "8-9": Spec("parallel_tolerated"),
    "8-10": Spec("parallel_tolerated_exceeded"),
    "8-11": Spec("parallel_concurrent"),
    "8-12": Spec("parallel_flat"),
    "8-13": Spec("parallel_tolerated_percentage"),
    "8-14": Spec("parallel_replay"),
    "8-15": Spec("parallel_item_serdes"),
    "8-16": Spec("parallel_all_fail"),
    "8-17": Spec("parallel_min_not_reached"),
    "8-18": Spec("parallel_combined_completion"),
    "8-19": Spec("parallel_bad_concurrency"),
    "8-20": Spec("parallel_accessors"),
    "8-21": Spec("parallel_nested"),
    "8-22": Spec("parallel_percentage_boundary"),
}
