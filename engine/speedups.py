"""Opt-in changes to SDK 3.0.0 internals that make invocations cheaper without changing what they do.

``import engine`` leaves the SDK exactly as AWS ships it. A worker process (the Celery hooks in
``engine.celery_tasks``) and the in-process bench call ``install()``, which puts in place each
seam whose SDK internals are what the seam was written against: the SDK version is one verified
here, and the attributes, signatures and names the seam relies on are there. A seam that finds
anything else logs one warning and leaves the SDK alone, so a new SDK makes invocations slower,
never wrong. Each seam is kept only while removing it costs at least 5% on a benchmark row
(``manage.py durable_bench --only SEAMS`` measures them, ``bench/seams.py``).

Nothing here is needed for correctness: the journal plugin, which records step bodies for the
timeline and fires armed faults, goes through the SDK's public plugin entry point
(``aws_durable_execution.plugins``, enabled by ``DURABLE_EXECUTION_PLUGINS``).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import aws_durable_execution_sdk_python as sdk
from aws_durable_execution_sdk_python import plugin as sdk_plugin
from aws_durable_execution_sdk_python import serdes as sdk_serdes
from aws_durable_execution_sdk_python import state as sdk_state
from aws_durable_execution_sdk_python import threading as sdk_threading
from aws_durable_execution_sdk_python.lambda_service import (
    CallbackDetails,
    ChainedInvokeDetails,
    ContextDetails,
    ExecutionDetails,
    Operation,
    OperationStatus,
    OperationType,
    StepDetails,
    WaitDetails,
)

from engine import invoker, journal

log = logging.getLogger(__name__)

VERIFIED_SDK_VERSIONS = frozenset({"3.0.0"})  # each seam below was derived from, and tested on, these


class SdkMismatch(Exception):
    """The SDK's internals are not what a seam was written against."""


def expect(condition: object, what: str) -> None:
    if not condition:
        raise SdkMismatch(what)


def expect_parameters(function: Any, names: list[str]) -> None:
    expect(callable(function), f"{getattr(function, '__qualname__', function)} is not callable")
    found = list(inspect.signature(function).parameters)
    expect(found == names, f"{function.__qualname__}{tuple(found)} is not {function.__qualname__}{tuple(names)}")


def expect_names(function: Any, names: set[str]) -> None:
    """The function's code uses these names (attributes, globals): its logic is the one the seam knows."""
    missing = names - code_names(function.__code__)
    expect(not missing, f"{function.__qualname__} no longer uses {sorted(missing)}")


def code_names(code: Any) -> set[str]:
    """The names a function's code uses, its comprehensions' and nested functions' included."""
    nested = [const for const in code.co_consts if inspect.iscode(const)]
    return set(code.co_names).union(*(code_names(inner) for inner in nested))


def class_attribute(owner: type, name: str) -> Any:
    expect(name in owner.__dict__, f"{owner.__qualname__}.{name} is missing")
    return getattr(owner, name)


_sdk_stop_checkpointing: Any = None  # the SDK's own functions, bound when a seam is installed


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


_sdk_read_timeout: Any = None


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
    timeout: float = _sdk_read_timeout(self, batch, now, deadline)
    return timeout


_sdk_ordered_lock_acquire: Any = None
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
    acquired: bool = _sdk_ordered_lock_acquire(self)
    return acquired


# The tags of the SDK's envelope, read from its TypeTag once _read_the_tags has checked it.
_PLAIN_TAGS: dict[type, str] = {}
_PLAIN_TYPES: dict[str, type] = {}
_DICT_TAG = _LIST_TAG = ""


_sdk_extended_serialize: Any = None


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
    self: sdk_serdes.ExtendedTypeSerDes[Any], value: Any, context: sdk_serdes.SerDesContext | None = None
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
    text: str = _sdk_extended_serialize(self, value, context)
    return text


_sdk_extended_deserialize: Any = None


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
    self: sdk_serdes.ExtendedTypeSerDes[Any], data: str, context: sdk_serdes.SerDesContext | None = None
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


# --- the journal as the only plugin -------------------------------------------------------------

_HAS_OTHER_PLUGINS = "_durable_lab_has_other_plugins"


def _journal_is_the_only_plugin(executor: sdk_plugin.PluginExecutor) -> bool:
    """SDK 3.0.0's ``has_plugins``, except that the journal alone does not count.

    With any plugin registered the SDK copies the whole operation map twice at every checkpoint
    response and builds an info object per operation, for ``on_operation_end`` and
    ``on_operation_change`` — hooks the journal does not implement. That is quadratic work in a
    long invocation. The journal's own hooks (``on_user_function_*``) are dispatched from the
    factory list, not from ``has_plugins``, so they still run. The SDK reads ``has_plugins`` on
    every checkpoint read, three times per replayed operation; its factory list is set once, in
    ``__init__``, so the answer is kept on the executor.
    """
    answer = executor.__dict__.get(_HAS_OTHER_PLUGINS)
    if answer is None:
        factories = executor._plugin_factories
        answer = bool(factories) and not all(isinstance(f, journal.JournalPluginFactory) for f in factories)
        executor.__dict__[_HAS_OTHER_PLUGINS] = answer
    return answer


_sdk_snapshot_operation_infos: Any = None


def _snapshot_unless_journal_only(executor: sdk_plugin.PluginExecutor, operations_provider: Any) -> dict[str, Any]:
    """SDK 3.0.0's ``_snapshot_operation_infos``, skipped when the journal is the only plugin.

    The SDK converts every operation into an ``OperationInfo`` for the invocation start and end
    hooks' info objects: O(operations) per invocation, about 20 ms at 1,000 operations. The
    journal never reads those infos (its factory ignores the start info), so with the journal
    alone the SDK's own "no plugins" answer, an empty map, is returned.
    """
    if _journal_is_the_only_plugin(executor):  # True when some other plugin is registered
        infos: dict[str, Any] = _sdk_snapshot_operation_infos(executor, operations_provider)
        return infos
    return {}


# --- converting the engine's operation documents ----------------------------------------------


def _ms_to_datetime(ms: int | None) -> datetime | Literal[0] | None:
    """``TimestampConverter.from_unix_millis`` for a set timestamp; a falsy one is kept as it is,
    as ``Operation.from_json_dict`` keeps it."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC) if ms else ms


_OPERATION_TYPES = {member.value: member for member in OperationType}
_OPERATION_STATUSES = {member.value: member for member in OperationStatus}
_DETAILS = (  # field, key, SDK conversion, what a falsy value becomes (as in Operation.from_dict)
    ("execution_details", "ExecutionDetails", ExecutionDetails.from_dict, False),
    ("context_details", "ContextDetails", ContextDetails.from_dict, False),
    ("step_details", "StepDetails", StepDetails.from_dict, False),
    ("wait_details", "WaitDetails", WaitDetails.from_dict, False),
    ("callback_details", "CallbackDetails", CallbackDetails.from_dict, False),
    # The SDK's walrus rebinds this one to the falsy value itself: {} stays {}.
    ("chained_invoke_details", "ChainedInvokeDetails", ChainedInvokeDetails.from_dict, True),
)
_DETAIL_TIMESTAMPS = {"StepDetails": "NextAttemptTimestamp", "WaitDetails": "ScheduledEndTimestamp"}
OPERATION_FIELDS = [
    "operation_id",
    "operation_type",
    "status",
    "parent_id",
    "name",
    "start_timestamp",
    "end_timestamp",
    "sub_type",
    "execution_details",
    "context_details",
    "step_details",
    "wait_details",
    "callback_details",
    "chained_invoke_details",
]


def operation_from_doc(doc: dict[str, Any]) -> Operation:
    """``Operation.from_json_dict`` without its deep copy, its enum calls and its dataclass ``__init__``.

    A replay converts every stored operation, so this runs 10,000 times for 10,000 operations:
    the SDK's conversion costs ~6 µs a document, this ~2.5 µs. The engine's documents come fresh
    from the database or the state machine and are not modified afterwards, so the copy is
    wasted. ``Operation`` is a frozen dataclass without ``__post_init__``, so filling its
    ``__dict__`` makes the object its ``__init__`` makes. The details keep the SDK's
    ``from_dict``. What the fast path does not know (a type or status the SDK would reject, no
    ``Id``) goes to the SDK's conversion, which raises its own error.
    """
    try:
        fields = _operation_fields(doc)
    except (KeyError, TypeError):
        return Operation.from_json_dict(doc)
    operation = object.__new__(Operation)
    operation.__dict__.update(fields)
    return operation


def _operation_fields(doc: dict[str, Any]) -> dict[str, Any]:
    """``Operation.from_dict``'s fields, in declaration order, with timestamps converted."""
    start_ms, end_ms = doc.get("StartTimestamp"), doc.get("EndTimestamp")
    start = _ms_to_datetime(start_ms)
    fields = {
        "operation_id": doc["Id"],
        "operation_type": _OPERATION_TYPES[doc["Type"]],  # a KeyError, missing or unknown, falls back
        "status": _OPERATION_STATUSES[doc["Status"]],
        "parent_id": doc.get("ParentId"),
        "name": doc.get("Name"),
        "start_timestamp": start,
        "end_timestamp": start if end_ms == start_ms else _ms_to_datetime(end_ms),  # often equal: one conversion
        "sub_type": doc.get("SubType") or None,
    }
    for field, key, from_dict, keeps_falsy in _DETAILS:
        details = doc.get(key)
        if details:
            fields[field] = from_dict(_details_with_timestamp(key, details))
        else:
            fields[field] = details if keeps_falsy else None
    return fields


def _details_with_timestamp(key: str, details: dict[str, Any]) -> dict[str, Any]:
    """The details with their timestamp (if any) as a datetime, in a shallow copy."""
    ms_key = _DETAIL_TIMESTAMPS.get(key)
    if ms_key is None or not details.get(ms_key):
        return details
    return {**details, ms_key: _ms_to_datetime(details[ms_key])}


# --- what each seam checks, and what it replaces ---------------------------------------------


@dataclass(frozen=True)
class Patch:
    """``owner.name = value``; ``owner`` is a class or a module."""

    owner: Any
    name: str
    value: Any


def _wake_checkpoint_thread() -> list[Patch]:
    global _sdk_stop_checkpointing
    state = sdk_state.ExecutionState
    _sdk_stop_checkpointing = class_attribute(state, "stop_checkpointing")
    expect_parameters(_sdk_stop_checkpointing, ["self"])
    expect(hasattr(sdk_state, "_Signal") and hasattr(sdk_state._Signal, "REFRESH_WAKE"), "_Signal.REFRESH_WAKE")
    expect_names(state.__init__, {"_checkpoint_queue"})
    for reader in (state._wait_for_first_operation, state._collect_checkpoint_batch):
        expect_names(reader, {"_Signal", "_consume_refresh_wake", "_checkpointing_stopped"})
    return [Patch(state, "stop_checkpointing", _stop_checkpointing_and_wake)]


def _send_a_blocked_batch_at_once() -> list[Patch]:
    global _sdk_read_timeout
    state = sdk_state.ExecutionState
    _sdk_read_timeout = class_attribute(state, "_read_timeout")
    expect_parameters(_sdk_read_timeout, ["self", "batch", "now", "deadline"])
    expect(hasattr(sdk_state, "_BLOCKED_CALLER_WAIT_SECONDS"), "_BLOCKED_CALLER_WAIT_SECONDS")
    expect_names(sdk_state._BatchAccumulator.__init__, {"has_blocked_caller"})
    expect_names(state.__init__, {"_branch_pools", "_checkpoint_queue"})
    expect_names(state._collect_checkpoint_batch, {"_read_timeout"})
    return [Patch(state, "_read_timeout", _read_timeout_without_idle_wait)]


def _take_a_free_lock_at_once() -> list[Patch]:
    global _sdk_ordered_lock_acquire
    lock = sdk_threading.OrderedLock
    _sdk_ordered_lock_acquire = class_attribute(lock, "acquire")
    expect_parameters(_sdk_ordered_lock_acquire, ["self"])
    expect_names(_sdk_ordered_lock_acquire, {"Event", "_waiters", "_is_broken", "_lock"})
    expect_names(class_attribute(lock, "release"), {"popleft", "set", "_waiters"})
    expect(".clear()" not in inspect.getsource(sdk_threading), "a queued event may be cleared")
    return [Patch(lock, "acquire", _acquire_free_lock_at_once)]


def _read_the_tags() -> None:
    """Build the tag tables from the SDK's ``TypeTag``, checking it has the tags the seams know."""
    global _DICT_TAG, _LIST_TAG
    tag = sdk_serdes.TypeTag
    known = {"NONE", "STR", "BOOL", "INT", "FLOAT", "BYTES", "UUID", "DECIMAL", "DATETIME", "DATE"}
    known |= {"LIST", "TUPLE", "DICT", "BATCH_RESULT"}
    expect({member.name for member in tag} == known, f"TypeTag is {sorted(m.name for m in tag)}")
    _PLAIN_TAGS.update({str: tag.STR.value, int: tag.INT.value, float: tag.FLOAT.value, bool: tag.BOOL.value})
    _PLAIN_TAGS[type(None)] = tag.NONE.value
    _PLAIN_TYPES.update({value: kind for kind, value in _PLAIN_TAGS.items()})
    _DICT_TAG, _LIST_TAG = tag.DICT.value, tag.LIST.value


def _serialize_in_one_pass() -> list[Patch]:
    global _sdk_extended_serialize
    serdes = sdk_serdes.ExtendedTypeSerDes
    _sdk_extended_serialize = class_attribute(serdes, "serialize")
    expect_parameters(_sdk_extended_serialize, ["self", "value", "context"])
    expect(callable(getattr(sdk_serdes.SerDes, "is_primitive", None)), "SerDes.is_primitive")
    _read_the_tags()
    return [Patch(serdes, "serialize", _serialize_plain_json_in_one_pass)]


def _deserialize_in_one_pass() -> list[Patch]:
    global _sdk_extended_deserialize
    serdes = sdk_serdes.ExtendedTypeSerDes
    _sdk_extended_deserialize = class_attribute(serdes, "deserialize")
    expect_parameters(_sdk_extended_deserialize, ["self", "data", "context"])
    _read_the_tags()
    return [Patch(serdes, "deserialize", _deserialize_plain_json_in_one_pass)]


def _journal_alone_is_no_plugin() -> list[Patch]:
    executor = sdk_plugin.PluginExecutor
    expect(isinstance(executor.__dict__.get("has_plugins"), property), "PluginExecutor.has_plugins is not a property")
    # The answer may be kept: the SDK sets the factory list once, in __init__.
    source = inspect.getsource(executor)
    expect(source.count("self._plugin_factories =") == 1, "the factory list is set only in __init__")
    expect_names(executor.__init__, {"_plugin_factories"})
    # The body hooks the journal relies on are dispatched from the factory list, not has_plugins.
    expect_names(class_attribute(executor, "execute_plugins"), {"_plugin_factories"})
    return [Patch(executor, "has_plugins", property(_journal_is_the_only_plugin))]


def _no_operation_snapshot_for_the_journal() -> list[Patch]:
    global _sdk_snapshot_operation_infos
    executor = sdk_plugin.PluginExecutor
    _sdk_snapshot_operation_infos = class_attribute(executor, "_snapshot_operation_infos")
    expect_parameters(_sdk_snapshot_operation_infos, ["self", "operations_provider"])
    expect_names(executor.__init__, {"_plugin_factories"})
    for hook in (executor.on_invocation_start, executor.on_invocation_end):
        expect_names(hook, {"_snapshot_operation_infos"})
    return [Patch(executor, "_snapshot_operation_infos", _snapshot_unless_journal_only)]


def _convert_documents_directly() -> list[Patch]:
    # Filling __dict__ makes what __init__ makes only for a plain frozen dataclass: no
    # __post_init__, no slots, no field computed by __init__, and the fields in this order.
    expect(dataclasses.is_dataclass(Operation), "Operation is not a dataclass")
    params = Operation.__dataclass_params__  # type: ignore[attr-defined]
    expect(params.frozen and params.init, "Operation is not a frozen dataclass with __init__")
    expect(not hasattr(Operation, "__post_init__") and "__slots__" not in Operation.__dict__, "Operation.__init__")
    fields = dataclasses.fields(Operation)
    expect([f.name for f in fields] == OPERATION_FIELDS, "Operation's fields")
    expect(all(f.init and f.default_factory is dataclasses.MISSING for f in fields), "Operation's defaults")
    for _, _, from_dict, _ in _DETAILS:
        expect_parameters(from_dict, ["data"])
    return [Patch(invoker, "operation_from_doc", operation_from_doc)]


@dataclass(frozen=True)
class Seam:
    name: str
    prepare: Callable[[], list[Patch]]  # checks the SDK (raising SdkMismatch) and says what to patch


SEAMS = (
    Seam("checkpoint_wake", _wake_checkpoint_thread),
    Seam("blocked_batch_at_once", _send_a_blocked_batch_at_once),
    Seam("free_lock_at_once", _take_a_free_lock_at_once),
    Seam("serialize_one_pass", _serialize_in_one_pass),
    Seam("deserialize_one_pass", _deserialize_in_one_pass),
    Seam("journal_alone_is_no_plugin", _journal_alone_is_no_plugin),
    Seam("no_snapshot_for_the_journal", _no_operation_snapshot_for_the_journal),
    Seam("operation_from_doc", _convert_documents_directly),
)
SEAM_NAMES = frozenset(seam.name for seam in SEAMS)

_MISSING = object()
_installed: dict[str, list[tuple[Patch, Any]]] = {}  # seam name -> (patch, what it replaced)
_refused: dict[str, str] = {}  # seam name -> why it was left out (warned once)
_lock = threading.Lock()
_announced = threading.Event()


def install(*, only: Iterable[str] | None = None, skip: Iterable[str] = ()) -> frozenset[str]:
    """Put the seams in place (all, ``only`` these, minus ``skip``); return the installed ones.

    Idempotent. A seam whose SDK internals are not what it expects logs one warning (once per
    process) and patches nothing.
    """
    named, left_out = set(SEAM_NAMES if only is None else only), set(skip)
    unknown = (named | left_out) - SEAM_NAMES
    if unknown:
        raise ValueError(f"unknown seams {sorted(unknown)}; known: {sorted(SEAM_NAMES)}")
    chosen = named - left_out
    with _lock:
        settled = _installed.keys() | _refused.keys()  # installed, or refused with its one warning
        new = [seam for seam in SEAMS if seam.name in chosen and seam.name not in settled]
        for seam in new:
            _install(seam)
    if any(seam.name in _installed for seam in new):
        # Said once at INFO (the worker's start-up log); the bench reinstalls seams many times.
        level = logging.DEBUG if _announced.is_set() else logging.INFO
        _announced.set()
        log.log(level, "SDK seams installed: %s", ", ".join(sorted(_installed)))
    return installed()


def _install(seam: Seam) -> None:
    try:
        expect(sdk.__version__ in VERIFIED_SDK_VERSIONS, f"SDK {sdk.__version__} is not a verified version")
        patches = seam.prepare()
    except Exception as exc:  # SdkMismatch, or whatever the SDK's changed internals raised
        _refused[seam.name] = str(exc) or type(exc).__name__
        log.warning("SDK seam %s left out, the SDK runs unchanged there: %s", seam.name, _refused[seam.name])
        return
    replaced = [(patch, _current(patch)) for patch in patches]
    for patch in patches:
        setattr(patch.owner, patch.name, patch.value)
    _installed[seam.name] = replaced


def _current(patch: Patch) -> Any:
    if isinstance(patch.owner, type):  # the raw entry: a staticmethod or property, not what it gives
        return patch.owner.__dict__.get(patch.name, _MISSING)
    return getattr(patch.owner, patch.name, _MISSING)


def uninstall(names: Iterable[str] | None = None) -> frozenset[str]:
    """Put back what the seams replaced (all, or these); return the seams still installed.

    For the bench (with and without each seam, in one run) and for tests.
    """
    with _lock:
        for name in list(_installed if names is None else names):
            for patch, original in reversed(_installed.pop(name, [])):
                if original is _MISSING:
                    delattr(patch.owner, patch.name)
                else:
                    setattr(patch.owner, patch.name, original)
    return installed()


def installed() -> frozenset[str]:
    return frozenset(_installed)


def refused() -> dict[str, str]:
    """The seams left out of this process, and why."""
    return dict(_refused)
