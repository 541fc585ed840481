"""Changes to SDK 3.0.0 internals that make invocations cheaper without changing what they do.

Each is installed once, on import of the ``engine`` package, and pinned by a contract test in
``tests/engine/test_sdk_contract.py``: an SDK upgrade that moves the seam fails there first.
(The journal's plugin seams live with the journal, in ``engine.journal``.)
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from aws_durable_execution_sdk_python import execution as sdk_execution
from aws_durable_execution_sdk_python import serdes as sdk_serdes
from aws_durable_execution_sdk_python import state as sdk_state
from aws_durable_execution_sdk_python import threading as sdk_threading

_sdk_stop_checkpointing = sdk_state.ExecutionState.stop_checkpointing


def _stop_checkpointing_and_wake(self: sdk_state.ExecutionState) -> None:
    """The SDK's ``stop_checkpointing``, plus a wake-up for the checkpoint thread.

    Between batches the checkpoint thread blocks on its queue for up to
    ``_STOP_SIGNAL_POLL_SECONDS`` (100 ms) before it looks at the stop signal again, and the end
    of every invocation joins that thread: every invocation ended up to 100 ms after its handler
    returned. The SDK's own wake-up item (``REFRESH_WAKE``: the thread takes it, then re-checks the
    stop signal) ends that wait at once. The poll interval and the 1 s batch window stay the
    SDK's.
    """
    _sdk_stop_checkpointing(self)
    self._checkpoint_queue.put(sdk_state._Signal.REFRESH_WAKE)


sdk_state.ExecutionState.stop_checkpointing = _stop_checkpointing_and_wake  # type: ignore[method-assign]


_sdk_read_timeout = sdk_state.ExecutionState._read_timeout


def _read_timeout_without_idle_wait(
    self: sdk_state.ExecutionState, batch: sdk_state._BatchAccumulator, now: float, deadline: float
) -> float:
    """SDK 3.0.0's ``ExecutionState._read_timeout``, minus a pointless wait.

    Once a batch holds a synchronous checkpoint, the SDK keeps reading its queue for 1 ms
    (``_BLOCKED_CALLER_WAIT_SECONDS``) so that sibling branch threads of a map or parallel can
    join the batch. Without branch pools the only thread that creates checkpoints is the one
    now blocked on this batch, so nothing can arrive: the wait only adds 1 ms to every step.
    The queue is FIFO, so whatever that thread queued before its blocking checkpoint is already
    in the batch; the batch is sent at once (0: the collector stops reading). Even a 1 µs wait
    would sleep for the kernel's timer slack, ~50 µs a step. With branches the SDK's wait is
    kept. Batch boundaries already depend on timing, so the set of possible behaviours is
    unchanged. Contract tests pin the SDK internals this relies on.
    """
    if batch.has_blocked_caller and not self._branch_pools:
        return 0.0
    return _sdk_read_timeout(self, batch, now, deadline)


sdk_state.ExecutionState._read_timeout = _read_timeout_without_idle_wait  # type: ignore[method-assign]


_sdk_ordered_lock_acquire = sdk_threading.OrderedLock.acquire
_GRANTED = threading.Event()
_GRANTED.set()


def _acquire_free_lock_at_once(self: sdk_threading.OrderedLock) -> bool:
    """SDK 3.0.0's ``OrderedLock.acquire``, without a new ``Event`` when the lock is free.

    The SDK queues a fresh ``Event`` for every caller, sets it at once when the queue was empty
    and waits on it: ~3 µs, twice per operation (the step counter is an ``OrderedCounter``), a
    tenth of a replayed step. A caller that finds the queue empty and the lock unbroken gets, in
    the same critical section, a queue entry that is already set: the SDK's outcome without the
    event. Nothing clears a queued event, and the only one ever set by ``release`` is the next
    in line, never an entry queued into an empty queue. Otherwise the SDK's own ``acquire`` runs.
    """
    with self._lock:
        if not self._waiters and not self._is_broken:
            self._waiters.append(_GRANTED)
            return True
    return _sdk_ordered_lock_acquire(self)


sdk_threading.OrderedLock.acquire = _acquire_free_lock_at_once  # type: ignore[method-assign]


_sdk_unwrap = sdk_serdes.ContainerCodec._unwrap
_sdk_container_decode = sdk_serdes.ContainerCodec.decode
_sdk_type_decode = sdk_serdes.TypeCodec.decode
_TAG_BY_VALUE = {tag.value: tag for tag in sdk_serdes.TypeTag}
_Tag = sdk_serdes.TypeTag
_CODEC_BY_TAG = {  # as in the SDK's TypeCodec.decode
    **dict.fromkeys((_Tag.NONE, _Tag.STR, _Tag.BOOL, _Tag.INT, _Tag.FLOAT), "primitive_codec"),
    _Tag.BYTES: "bytes_codec",
    _Tag.UUID: "uuid_codec",
    _Tag.DECIMAL: "decimal_codec",
    **dict.fromkeys((_Tag.DATETIME, _Tag.DATE), "datetime_codec"),
    **dict.fromkeys((_Tag.LIST, _Tag.TUPLE, _Tag.DICT, _Tag.BATCH_RESULT), "container_codec"),
}


def _unwrap_by_table(obj: Any, dispatcher: Any) -> Any:
    """SDK 3.0.0's ``ContainerCodec._unwrap`` with the tag found in a table, not by ``TypeTag(...)``.

    Replaying a step decodes its result envelope node by node; per node the enum call is a third
    of ``_unwrap``. For a JSON object with ``"t"`` and ``"v"`` whose tag string names a ``TypeTag``,
    the table gives the member ``TypeTag(tag)`` returns. Anything else (an ``EncodedValue``, an
    unknown or non-string tag, a plain value) goes to the SDK's ``_unwrap``.
    """
    if type(obj) is dict and "t" in obj and "v" in obj:
        value = obj["t"]
        tag = _TAG_BY_VALUE.get(value) if type(value) is str else None
        if tag is not None:
            return dispatcher.decode(tag, obj["v"])
    return _sdk_unwrap(obj, dispatcher)


def _decode_by_table(self: sdk_serdes.TypeCodec, tag: Any, value: Any) -> Any:
    """SDK 3.0.0's ``TypeCodec.decode``: the same codec for each tag, found in a table.

    The SDK's ``match`` tries the tags one by one (up to 14 comparisons per node). A ``TypeTag``
    member is looked up instead and handed to the codec the SDK's ``match`` picks for it; any
    other tag goes to the SDK's ``decode``, which raises its own error.
    """
    codec = _CODEC_BY_TAG.get(tag) if type(tag) is sdk_serdes.TypeTag else None
    if codec is None:
        return _sdk_type_decode(self, tag, value)
    return getattr(self, codec).decode(tag, value)


def _decode_json_container(self: sdk_serdes.ContainerCodec, tag: Any, value: Any) -> Any:
    """SDK 3.0.0's ``ContainerCodec.decode`` of a dict or a list, with its loop's lookups done once.

    Per element the SDK's comprehension looks up ``self._unwrap`` (the function above, see the
    contract tests) and the ``dispatcher`` property, which returns ``_dispatcher`` once it is
    set. For a ``DICT`` tag with a dict or a ``LIST`` tag with a list, and a dispatcher set, the
    same calls are made with both looked up once. Every other case (tuples, batch results, the
    type errors the SDK raises, a subclass) is the SDK's ``decode``.
    """
    dispatcher = self._dispatcher
    if dispatcher is not None and type(self) is sdk_serdes.ContainerCodec:
        if tag is _Tag.DICT and type(value) is dict:
            return {key: _unwrap_by_table(item, dispatcher) for key, item in value.items()}
        if tag is _Tag.LIST and type(value) is list:
            return [_unwrap_by_table(item, dispatcher) for item in value]
    return _sdk_container_decode(self, tag, value)


sdk_serdes.ContainerCodec._unwrap = staticmethod(_unwrap_by_table)  # type: ignore[method-assign,assignment]
sdk_serdes.ContainerCodec.decode = _decode_json_container  # type: ignore[method-assign]
sdk_serdes.TypeCodec.decode = _decode_by_table  # type: ignore[method-assign]


_sdk_extended_serialize = sdk_serdes.ExtendedTypeSerDes.serialize
_PLAIN_TAGS = {str: _Tag.STR.value, int: _Tag.INT.value, float: _Tag.FLOAT.value, bool: _Tag.BOOL.value}
_PLAIN_TAGS[type(None)] = _Tag.NONE.value
_DICT_TAG, _LIST_TAG = _Tag.DICT.value, _Tag.LIST.value


class _NotPlainJson(Exception):
    """A node the envelope below leaves to the SDK's encoder."""


def _envelope(obj: Any) -> Any:
    """The JSON form of SDK 3.0.0's ``ExtendedTypeSerDes`` envelope for a tree of exactly dict
    (string keys), list, str, int, float, bool and None: ``{"t": tag, "v": value}`` per node."""
    kind = type(obj)
    tag = _PLAIN_TAGS.get(kind)
    if tag is not None:
        return {"t": tag, "v": obj}
    if kind is dict:
        encoded = {}
        for key, value in obj.items():
            if type(key) is not str:
                raise _NotPlainJson
            encoded[key] = _envelope(value)
        return {"t": _DICT_TAG, "v": encoded}
    if kind is list:
        return {"t": _LIST_TAG, "v": [_envelope(item) for item in obj]}
    raise _NotPlainJson


def _serialize_plain_json_in_one_pass(
    self: sdk_serdes.ExtendedTypeSerDes, value: Any, context: sdk_serdes.SerDesContext | None = None
) -> str:
    """SDK 3.0.0's ``ExtendedTypeSerDes.serialize``, in one pass for a plain JSON tree.

    A step's result is serialized by every step (and decoded again at once, so the first run
    returns what a replay would). For a dict, or a list that is not all primitives (the SDK
    writes those as plain JSON), the SDK encodes node by node through ``match`` statements into
    ``EncodedValue`` objects, then converts those to dicts: ~24 µs for a 120-byte payload, a
    tenth of a step's SDK time. ``_envelope`` builds the same dicts directly, and the same
    ``json.dumps`` call writes the same text. Any other node (a tuple, bytes, a subclass, a
    non-string key) sends the whole value to the SDK's encoder, as does a subclass of the serdes.
    """
    kind = type(value)
    if type(self) is sdk_serdes.ExtendedTypeSerDes and (
        kind is dict or (kind is list and not sdk_serdes.SerDes.is_primitive(value))
    ):
        try:
            wrapped = _envelope(value)
        except (_NotPlainJson, RecursionError):
            pass
        else:
            return json.dumps(wrapped, separators=(",", ":"))
    return _sdk_extended_serialize(self, value, context)


sdk_serdes.ExtendedTypeSerDes.serialize = _serialize_plain_json_in_one_pass  # type: ignore[method-assign]


_sdk_extended_deserialize = sdk_serdes.ExtendedTypeSerDes.deserialize
_PLAIN_TYPES = {tag: kind for kind, tag in _PLAIN_TAGS.items()}


def _plain_value(node: Any) -> Any:
    """The value of one node of an envelope that ``_envelope`` could have written, as SDK 3.0.0's
    decoders give it; ``_NotPlainJson`` for any other node."""
    if type(node) is not dict or len(node) != 2:
        raise _NotPlainJson
    tag, value = node.get("t"), node.get("v")
    if type(tag) is not str:
        raise _NotPlainJson
    if tag == _DICT_TAG and type(value) is dict:
        return {key: _plain_value(item) for key, item in value.items()}
    if tag == _LIST_TAG and type(value) is list:
        return [_plain_value(item) for item in value]
    if type(value) is _PLAIN_TYPES.get(tag):  # str(value), int(value)... of the exact type: value itself
        return value
    raise _NotPlainJson


def _deserialize_plain_json_in_one_pass(
    self: sdk_serdes.ExtendedTypeSerDes, data: str, context: sdk_serdes.SerDesContext | None = None
) -> Any:
    """SDK 3.0.0's ``ExtendedTypeSerDes.deserialize``, in one pass for a plain JSON envelope.

    Every step decodes its result right after encoding it, and every replayed step decodes its
    stored result: for a dict or list envelope made only of dict, list, str, int, float, bool
    and None nodes, each node's value is read directly. Any other document (a primitive, a
    tuple, bytes, a malformed envelope, a subclass of the serdes) is the SDK's ``deserialize``,
    which gives its own answer or error.
    """
    if type(self) is sdk_serdes.ExtendedTypeSerDes and type(data) is str:
        try:
            document = json.loads(data)
            if type(document) is dict and document.get("t") in (_DICT_TAG, _LIST_TAG):
                return _plain_value(document)
        except (ValueError, _NotPlainJson, RecursionError):
            pass
    return _sdk_extended_deserialize(self, data, context)


sdk_serdes.ExtendedTypeSerDes.deserialize = _deserialize_plain_json_in_one_pass  # type: ignore[method-assign]


_kept = threading.local()


class _ThreadsKeptForTheNextInvocation:
    """The ``ThreadPoolExecutor(max_workers=2, thread_name_prefix="dex-handler")`` that SDK
    3.0.0's ``durable_execution`` wrapper makes for every invocation, with its threads kept.

    The SDK starts two threads per invocation (the handler's and the checkpoint batcher's) and
    joins them at its end: ~0.2 ms, more than a checkpoint statement. Here each calling thread
    keeps one pool per process, and leaving the ``with`` block waits for exactly what was
    submitted in it, as ``shutdown(wait=True)`` did; the threads then sit idle for the caller's
    next invocation, as a warm Lambda sandbox keeps its runtime. The SDK runs the handler in a
    copy of the caller's context (with the journal plugin configured), so no context variable
    set by one invocation's code reaches the next. A pool whose caller thread is gone is
    collected, and ``concurrent.futures`` then ends its idle threads.
    """

    def __init__(self, max_workers: int, thread_name_prefix: str = "") -> None:
        key = (os.getpid(), max_workers, thread_name_prefix)  # a forked child has no threads
        if getattr(_kept, "key", None) != key:
            _kept.pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=thread_name_prefix)
            _kept.key = key
        self._pool: ThreadPoolExecutor = _kept.pool
        self._submitted: list[Future[Any]] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future = self._pool.submit(fn, *args, **kwargs)
        self._submitted.append(future)
        return future

    def __enter__(self) -> _ThreadsKeptForTheNextInvocation:
        return self

    def __exit__(self, *exc_info: object) -> None:
        wait(self._submitted)


sdk_execution.ThreadPoolExecutor = _ThreadsKeptForTheNextInvocation  # type: ignore[attr-defined,misc]
