"""Handlers for the 'map' conformance suite (9-x), written from each requirement's text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_durable_execution_sdk_python import BatchResult, DurableContext, durable_execution
from aws_durable_execution_sdk_python.concurrency.models import BatchItem, BatchItemStatus, CompletionReason
from aws_durable_execution_sdk_python.config import CompletionConfig, Duration, MapConfig, NestingType
from aws_durable_execution_sdk_python.serdes import JsonSerDes, SerDes, SerDesContext

from conformance.handlers.parallel import projection, without_status
from conformance.runner import Spec

# One item at a time keeps the history's event order deterministic.
SEQUENTIAL = MapConfig(max_concurrency=1)


def sequential(**completion: Any) -> MapConfig:
    return MapConfig(max_concurrency=1, completion_config=CompletionConfig(**completion))


def returns_item(ctx: DurableContext, item: Any, index: int, items: Sequence[Any]) -> Any:
    return item


def upper(ctx: DurableContext, item: str, index: int, items: Sequence[Any]) -> str:
    return item.upper()


def fails_on(marker: str):
    """A map function that returns its item, or raises when the item is ``marker``."""

    def run(ctx: DurableContext, item: str, index: int, items: Sequence[Any]) -> str:
        if item == marker:
            raise RuntimeError(f"item {index} failed on purpose")
        return item

    return run


@durable_execution
def map_basic(event: Any, context: DurableContext) -> list[Any]:
    """9-1: one step per item returns a greeting."""

    def greet(ctx: DurableContext, item: str, index: int, items: Sequence[Any]) -> str:
        return ctx.step(lambda _: f"Hello, {item}!")

    return context.map(event, greet, name="map", config=SEQUENTIAL).get_results()


@durable_execution
def map_unnamed(event: Any, context: DurableContext) -> list[Any]:
    """9-2: the items-only form; each item is doubled without an inner operation."""
    return context.map(event, lambda ctx, item, index, items: item * 2, config=SEQUENTIAL).get_results()


@durable_execution
def map_item_and_index(event: Any, context: DurableContext) -> list[Any]:
    """9-3: the function sees the item and its index."""
    return context.map(
        event, lambda ctx, item, index, items: item + index, name="indexed", config=SEQUENTIAL
    ).get_results()


@durable_execution
def map_empty(event: Any, context: DurableContext) -> list[Any]:
    """9-4: no items: the map context starts and succeeds with nothing in it."""
    return context.map(event, returns_item, name="empty").get_results()


@durable_execution
def map_fail_fast(event: Any, context: DurableContext) -> dict[str, Any]:
    """9-5: tolerated-failure-count=0 stops after item 1 fails; item 2 never starts."""
    config = sequential(tolerated_failure_count=0)
    return projection(context.map(["ok", "fail", "never"], fails_on("fail"), name="failfast", config=config))


@durable_execution
def map_throw_if_error(event: Any, context: DurableContext) -> list[Any]:
    """9-6: item 0 fails; rethrowing it from the batch result fails the execution."""
    config = sequential(tolerated_failure_count=0)
    result = context.map(["fail", "never"], fails_on("fail"), name="throwing", config=config)
    result.throw_if_error()
    return result.get_results()


@durable_execution
def map_min_successful(event: Any, context: DurableContext) -> dict[str, Any]:
    """9-7: min-successful=2 completes after items 0 and 1."""
    items = [f"m{i}" for i in range(4)]
    full = projection(context.map(items, returns_item, name="min-successful", config=sequential(min_successful=2)))
    return {key: full[key] for key in ("completionReason", "successCount", "totalCount")}


@durable_execution
def map_tolerated(event: Any, context: DurableContext) -> dict[str, Any]:
    """9-8: one failure is tolerated, so all three items run."""
    config = sequential(tolerated_failure_count=1)
    return projection(context.map(["a", "fail", "c"], fails_on("fail"), name="tolerated", config=config))


@durable_execution
def map_tolerated_exceeded(event: Any, context: DurableContext) -> dict[str, Any]:
    """9-9: the second failure exceeds tolerated-failure-count=1; item 2 never starts."""
    config = sequential(tolerated_failure_count=1)
    items = ["fail", "fail", "never"]
    return without_status(context.map(items, fails_on("fail"), name="tolerated-exceeded", config=config))


@durable_execution
def map_tolerated_percentage(event: Any, context: DurableContext) -> dict[str, Any]:
    """9-10: 2 of 4 failed (50%) exceeds 25%; items 2 and 3 never start."""
    config = sequential(tolerated_failure_percentage=25)
    items = ["fail", "fail", "c", "d"]
    return without_status(context.map(items, fails_on("fail"), name="tolerated-pct", config=config))


@durable_execution
def map_concurrent(event: Any, context: DurableContext) -> list[Any]:
    """9-11: two items at a time; results still come back in index order."""
    config = MapConfig(max_concurrency=2)
    return context.map(["r0", "r1", "r2"], returns_item, name="concurrent", config=config).get_results()


@durable_execution
def map_flat(event: Any, context: DurableContext) -> list[Any]:
    """9-12: FLAT nesting: no iteration contexts, the steps hang off the map context."""

    def step_item(ctx: DurableContext, item: str, index: int, items: Sequence[Any]) -> str:
        return ctx.step(lambda _: item)

    config = MapConfig(max_concurrency=1, nesting_type=NestingType.FLAT)
    return context.map(["fa", "fb"], step_item, name="flat", config=config).get_results()


@durable_execution
def map_item_namer(event: Any, context: DurableContext) -> list[Any]:
    """9-13: each iteration is named from its item; the results are unchanged."""
    config = MapConfig(max_concurrency=1, item_namer=lambda item, index: f"item-{item}")
    return context.map(
        event, lambda ctx, item, index, items: item * 10, name="named-items", config=config
    ).get_results()


class PrefixSerDes(SerDes[str]):
    """Stores a string s as "wrapped:s" and reads it back as s: not an identity, so it shows."""

    prefix = "wrapped:"

    def serialize(self, value: str, serdes_context: SerDesContext) -> str:
        return f"{self.prefix}{value}"

    def deserialize(self, data: str, serdes_context: SerDesContext) -> str:
        if not data.startswith(self.prefix):
            raise ValueError(f"not written by {type(self).__name__}: {data!r}")
        return data.removeprefix(self.prefix)


@durable_execution
def map_item_serdes(event: Any, context: DurableContext) -> list[Any]:
    """9-14: a per-item serdes writes each iteration result as "wrapped:<result>"."""
    config = MapConfig(max_concurrency=1, item_serdes=PrefixSerDes())
    return context.map(["x", "y"], upper, name="serdes", config=config).get_results()


@durable_execution
def map_suspend_in_iteration(event: Any, context: DurableContext) -> list[Any]:
    """9-15: iteration 1 waits a second before its step; the resume skips iteration 0."""

    def run(ctx: DurableContext, item: str, index: int, items: Sequence[Any]) -> str:
        if index == 1:
            ctx.wait(Duration.from_seconds(1))
        return ctx.step(lambda _: item)

    return context.map(["r0", "r1"], run, name="suspend", config=SEQUENTIAL).get_results()


LARGE_ITEM = 70_000


@durable_execution
def map_large_result(event: Any, context: DurableContext) -> dict[str, Any]:
    """9-16: four ~70 KB results together pass the SDK's 256 KB checkpoint threshold."""
    items = [str(i) for i in range(4)]
    result = context.map(items, lambda ctx, item, index, items: item * LARGE_ITEM, name="large", config=SEQUENTIAL)
    return {"successCount": result.success_count, "totalCount": result.total_count}


@durable_execution
def map_then_wait(event: Any, context: DurableContext) -> list[Any]:
    """9-17: a wait after a successful map; the resume skips the map."""
    results = context.map(["a", "b"], upper, name="then-wait", config=SEQUENTIAL).get_results()
    context.wait(Duration.from_seconds(1))
    return results


@durable_execution
def map_failed_then_wait(event: Any, context: DurableContext) -> dict[str, Any]:
    """9-18: a wait after a map with a tolerated failure; the resume skips the map and its failure."""
    config = sequential(tolerated_failure_count=1)
    result = context.map(["ok", "fail"], fails_on("fail"), name="fail-then-wait", config=config)
    context.wait(Duration.from_seconds(1))
    return projection(result)


class OperationSerDes(SerDes[BatchResult[str]]):
    """The whole map result as "OPSERDE:" + the comma-joined results, and back."""

    prefix = "OPSERDE:"

    def serialize(self, value: BatchResult[str], serdes_context: SerDesContext) -> str:
        return self.prefix + ",".join(value.get_results())

    def deserialize(self, data: str, serdes_context: SerDesContext) -> BatchResult[str]:
        if not data.startswith(self.prefix):
            raise ValueError(f"not written by {type(self).__name__}: {data!r}")
        results = data.removeprefix(self.prefix).split(",")
        items = [BatchItem(index, BatchItemStatus.SUCCEEDED, result) for index, result in enumerate(results)]
        return BatchResult(items, CompletionReason.ALL_COMPLETED)


def operation_serdes_config() -> MapConfig:
    # item_serdes given too: with serdes alone the SDK would apply it to every item as well.
    return MapConfig(max_concurrency=1, serdes=OperationSerDes(), item_serdes=JsonSerDes())


@durable_execution
def map_operation_serdes(event: Any, context: DurableContext) -> list[Any]:
    """9-19: an operation-level serdes writes the whole result as "OPSERDE:X,Y"."""
    return context.map(["x", "y"], upper, name="op-serde", config=operation_serdes_config()).get_results()


@durable_execution
def map_operation_serdes_replay(event: Any, context: DurableContext) -> list[Any]:
    """9-20: the wait after the map makes the resume read the result back through the serdes."""
    result = context.map(["x", "y"], upper, name="op-serde-replay", config=operation_serdes_config())
    context.wait(Duration.from_seconds(1))
    return result.get_results()


SPECS: dict[str, Spec] = {
    "9-1": Spec("map_basic"),
    "9-2": Spec("map_unnamed"),
    "9-3": Spec("map_item_and_index"),
    "9-4": Spec("map_empty"),
    "9-5": Spec("map_fail_fast"),
    "9-6": Spec("map_throw_if_error"),
    "9-7": Spec("map_min_successful"),
    "9-8": Spec("map_tolerated"),
    "9-9": Spec("map_tolerated_exceeded"),
    "9-10": Spec("map_tolerated_percentage"),
    "9-11": Spec("map_concurrent"),
    "9-12": Spec("map_flat"),
    "9-13": Spec("map_item_namer"),
    "9-14": Spec("map_item_serdes"),
    "9-15": Spec("map_suspend_in_iteration"),
    "9-16": Spec("map_large_result"),
    "9-17": Spec("map_then_wait"),
    "9-18": Spec("map_failed_then_wait"),
    "9-19": Spec("map_operation_serdes"),
    "9-20": Spec("map_operation_serdes_replay"),
}
