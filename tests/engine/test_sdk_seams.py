"""Tests of ``engine.speedups``: the SDK as shipped after ``import engine``, what ``install()`` puts in
place and leaves out, and the SDK internals each seam relies on."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from typing import Any

import pytest
from aws_durable_execution_sdk_python import plugin as sdk_plugin
from aws_durable_execution_sdk_python import state as sdk_state

import engine
from engine import invoker, speedups
from tests.engine.support import ThreadDispatcher, invocations, settled, start, stored_ops


@pytest.fixture(autouse=True)
def _seams_installed() -> None:
    """These tests look at the seams in place, as the worker runs them."""
    speedups.install()


def test_stopping_the_checkpoint_thread_wakes_it_instead_of_letting_its_poll_run_out() -> None:
    assert sdk_state.ExecutionState.stop_checkpointing is speedups._stop_checkpointing_and_wake
    state = sdk_state.ExecutionState("arn", "token", {}, invoker.EngineServiceClient(), sdk_plugin.PluginExecutor([]))
    reads: list[tuple[bool, str]] = []  # (stop already signalled when the read returned, what it returned)
    sdk_get = state._checkpoint_queue.get

    def recording_get(*args: Any, **kwargs: Any) -> Any:
        try:
            item = sdk_get(*args, **kwargs)
        except queue.Empty:
            reads.append((state._checkpointing_stopped.is_set(), "timed out"))
            raise
        reads.append((state._checkpointing_stopped.is_set(), type(item).__name__))
        return item

    state._checkpoint_queue.get = recording_get  # type: ignore[method-assign]
    thread = threading.Thread(target=state.checkpoint_batches_forever)
    thread.start()
    state.stop_checkpointing()
    thread.join(timeout=10)
    assert not thread.is_alive()
    # A read that ended after the stop ended on the wake-up item, never by waiting out its poll.
    assert all(outcome == "_Signal" for stopped, outcome in reads if stopped), reads


def test_the_wake_up_item_makes_the_thread_recheck_the_stop_signal() -> None:
    # The thread treats any _Signal as "look again": it consumes the refresh wake and loops,
    # and both read loops check the stop signal before reading again.
    assert sdk_state._Signal.REFRESH_WAKE in sdk_state._Signal
    for reader in (
        sdk_state.ExecutionState._wait_for_first_operation,
        sdk_state.ExecutionState._collect_checkpoint_batch,
    ):
        names = reader.__code__.co_names
        assert "_Signal" in names and "_consume_refresh_wake" in names and "_checkpointing_stopped" in names
    assert sdk_state._STOP_SIGNAL_POLL_SECONDS == 0.1  # unchanged: batching keeps the SDK's timing


# --- installing: opt-in, chosen, checked -----------------------------------------------------

# Run in a fresh interpreter: prints what changed in the SDK's modules and classes (by identity)
# between a fresh SDK import and the end of the snippet, and the warnings logged.
_PROBE = """
import importlib, json, logging, pkgutil, sys
import aws_durable_execution_sdk_python as sdk

def modules():
    for info in pkgutil.walk_packages(sdk.__path__, sdk.__name__ + "."):
        yield importlib.import_module(info.name)
    yield sdk

def snapshot():
    seen = {}
    for module in list(modules()):
        for name, value in vars(module).items():
            seen[f"{module.__name__}.{name}"] = id(value)
            if isinstance(value, type) and value.__module__ == module.__name__:
                for attr, member in vars(value).items():
                    seen[f"{module.__name__}.{name}.{attr}"] = id(member)
    return seen

warnings = []
class Keep(logging.Handler):
    def emit(self, record):
        warnings.append(record.getMessage())
logging.getLogger().addHandler(Keep(level=logging.WARNING))
fresh = snapshot()
{body}
after = snapshot()
changed = sorted(key for key in fresh.keys() | after.keys() if fresh.get(key) != after.get(key))
print(json.dumps({"changed": changed, "warnings": warnings, "out": globals().get("out")}))
"""


def _probe(body: str) -> dict[str, Any]:
    code = _PROBE.replace("{body}", textwrap.dedent(body))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


_TARGETS = {  # seam -> the SDK (or engine) attributes it replaces
    "checkpoint_wake": ["aws_durable_execution_sdk_python.state.ExecutionState.stop_checkpointing"],
    "blocked_batch_at_once": ["aws_durable_execution_sdk_python.state.ExecutionState._read_timeout"],
    "free_lock_at_once": ["aws_durable_execution_sdk_python.threading.OrderedLock.acquire"],
    "serialize_one_pass": ["aws_durable_execution_sdk_python.serdes.ExtendedTypeSerDes.serialize"],
    "deserialize_one_pass": ["aws_durable_execution_sdk_python.serdes.ExtendedTypeSerDes.deserialize"],
    "journal_alone_is_no_plugin": ["aws_durable_execution_sdk_python.plugin.PluginExecutor.has_plugins"],
    "no_snapshot_for_the_journal": ["aws_durable_execution_sdk_python.plugin.PluginExecutor._snapshot_operation_infos"],
    "operation_from_doc": [],  # replaces engine.invoker.operation_from_doc, not an SDK attribute
}


def _sdk_targets(seams: Any) -> list[str]:
    return sorted(target for seam in seams for target in _TARGETS[seam])


def test_every_seam_is_listed_here() -> None:
    assert set(_TARGETS) == speedups.SEAM_NAMES


def test_importing_the_engine_or_its_client_leaves_the_sdk_as_shipped() -> None:
    result = _probe(
        """
        import os
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "durable_site.settings")
        import engine, engine.api, engine.invoker, engine.journal
        import django; django.setup()
        from engine.contrib.django.management.commands import durable
        """
    )
    assert result == {"changed": [], "warnings": [], "out": None}


def test_install_puts_in_place_the_chosen_seams_only_and_uninstall_takes_them_out() -> None:
    result = _probe(
        """
        from engine import invoker, speedups
        chosen = speedups.install(only=["checkpoint_wake", "serialize_one_pass", "operation_from_doc"])
        again = speedups.install(only=["checkpoint_wake"])
        out = {"chosen": sorted(chosen), "again": sorted(again), "fast_docs": invoker.operation_from_doc is speedups.operation_from_doc}
        """
    )
    assert result["out"] == {
        "chosen": ["checkpoint_wake", "operation_from_doc", "serialize_one_pass"],
        "again": ["checkpoint_wake", "operation_from_doc", "serialize_one_pass"],  # idempotent
        "fast_docs": True,
    }
    assert result["changed"] == _sdk_targets(["checkpoint_wake", "serialize_one_pass"]) and not result["warnings"]

    every = _probe("from engine import speedups\nout = sorted(speedups.install(skip=['free_lock_at_once']))")
    assert every["out"] == sorted(speedups.SEAM_NAMES - {"free_lock_at_once"})
    assert every["changed"] == _sdk_targets(speedups.SEAM_NAMES - {"free_lock_at_once"})

    undone = _probe("from engine import speedups\nspeedups.install()\nout = sorted(speedups.uninstall())")
    assert undone == {"changed": [], "warnings": [], "out": []}


def test_an_unknown_seam_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown seams \\['nope'\\]"):
        speedups.install(only=["nope"])
    with pytest.raises(ValueError, match="unknown seams \\['nope'\\]"):
        speedups.install(skip=["nope"])


@pytest.mark.parametrize("setting", ["on", "off"])
def test_the_worker_start_up_hook_installs_the_seams_unless_turned_off(setting: str) -> None:
    result = _probe(
        f"""
        import os
        os.environ["DURABLE_SDK_SPEEDUPS"] = "{setting}"
        from engine import celery_tasks, speedups
        celery_tasks._install_speedups()
        out = sorted(speedups.installed())
        """
    )
    expected = speedups.SEAM_NAMES if setting == "on" else set()
    assert result["out"] == sorted(expected) and result["changed"] == _sdk_targets(expected)


def test_an_sdk_version_not_verified_leaves_the_whole_sdk_alone_with_one_warning_per_seam() -> None:
    result = _probe(
        """
        sdk.__version__ = "3.1.0"
        from engine import speedups
        out = [sorted(speedups.install()), sorted(speedups.install())]
        """
    )
    assert result["out"] == [[], []]
    assert result["changed"] == ["aws_durable_execution_sdk_python.__version__"]  # the planted change only
    assert len(result["warnings"]) == len(speedups.SEAM_NAMES)  # one each, not again on the second install
    assert all("3.1.0 is not a verified version" in warning for warning in result["warnings"])


def test_changed_sdk_internals_leave_that_seam_out_with_one_warning_and_the_others_in() -> None:
    result = _probe(
        """
        from aws_durable_execution_sdk_python import plugin, threading as sdk_threading
        sdk_acquire = sdk_threading.OrderedLock.acquire
        def acquire(self, blocking=True):  # a new SDK's signature
            return sdk_acquire(self)
        del plugin.PluginExecutor._snapshot_operation_infos  # a new SDK without it
        sdk_threading.OrderedLock.acquire = acquire
        planted = snapshot()
        from engine import speedups
        installed = [sorted(speedups.install()), sorted(speedups.install())]
        out = {"installed": installed, "planted_kept": [sdk_threading.OrderedLock.acquire is acquire, hasattr(plugin.PluginExecutor, "_snapshot_operation_infos")]}
        fresh = planted
        """
    )
    left_out = {"free_lock_at_once", "no_snapshot_for_the_journal"}
    assert result["out"]["installed"] == [sorted(speedups.SEAM_NAMES - left_out)] * 2
    assert result["out"]["planted_kept"] == [True, False]
    assert result["changed"] == _sdk_targets(speedups.SEAM_NAMES - left_out)
    assert len(result["warnings"]) == 2
    [lock, snapshot] = sorted(result["warnings"])
    assert "free_lock_at_once" in lock and "('self', 'blocking')" in lock
    assert "no_snapshot_for_the_journal" in snapshot and "_snapshot_operation_infos is missing" in snapshot


def _outcome(arn: str) -> dict[str, Any]:
    """What a run left in the store, without its times and ids."""
    return {
        doc.get("Name"): (doc["Type"], doc["Status"], (doc.get("StepDetails") or {}).get("Result"))
        for doc in stored_ops(arn).values()
    }


def test_a_handler_runs_end_to_end_on_the_sdk_as_shipped(
    client: engine.LambdaClient, functions: Callable[..., str], sdk_as_shipped: ThreadDispatcher
) -> None:
    from aws_durable_execution_sdk_python import serdes as sdk_serdes

    assert speedups.installed() == frozenset()
    assert sdk_state.ExecutionState.stop_checkpointing.__module__ == sdk_state.__name__
    assert sdk_serdes.ExtendedTypeSerDes.serialize.__module__ == sdk_serdes.__name__
    assert invoker.operation_from_doc is not speedups.operation_from_doc
    function = functions("tests.handlers.engine_sdk.every_kind", timeout=30, execution_timeout=600)
    shipped = start(client, function)
    settled(shipped)
    speedups.install()
    seamed = start(client, function)
    settled(seamed)
    assert _outcome(shipped) == _outcome(seamed)
    assert _outcome(shipped)["ok"][:2] == ("STEP", "SUCCEEDED") and _outcome(shipped)["long"][:2] == ("WAIT", "STARTED")
    assert [row["outcome"] for row in invocations(shipped)] == ["suspended"]
