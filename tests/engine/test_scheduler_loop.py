"""The scheduler's loop never stops by itself: failing duties are logged and tried again, and a
database outage is logged once, waited out and its end reported (issue 21)."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from engine import scheduler
from engine.duties.sweep import recover_lost_invocations
from engine.duties.timers import fire_due_timers
from tests.conftest import wait_until


@pytest.fixture
def loop() -> Iterator[Callable[[], threading.Thread]]:
    """Start ``scheduler.run_forever`` in a thread of the test process; stop it afterwards."""
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def start() -> threading.Thread:
        thread = threading.Thread(target=scheduler.run_forever, args=(stop,), daemon=True)
        thread.start()
        threads.append(thread)
        return thread

    yield start
    stop.set()
    for thread in threads:
        thread.join(timeout=20)
        assert not thread.is_alive()


def _failing(real: Callable[..., Any], calls: list[float], exc: Exception, times: int = 10**9) -> Callable[..., Any]:
    """``real``, raising ``exc`` instead its first ``times`` calls; each call's time goes to ``calls``."""

    def fail(*args: Any, **kwargs: Any) -> Any:
        calls.append(time.monotonic())
        if len(calls) <= times:
            raise exc
        return real(*args, **kwargs)

    return fail


def test_a_duty_that_keeps_failing_is_tried_again_and_the_others_go_on(
    loop: Callable[[], threading.Thread], monkeypatch: pytest.MonkeyPatch
) -> None:
    recoveries: list[float] = []
    monkeypatch.setattr(
        scheduler,
        "recover_lost_invocations",
        _failing(recover_lost_invocations, recoveries, RuntimeError("a bug")),
    )
    ticks: list[float] = []
    real_tick = scheduler.tick
    monkeypatch.setattr(scheduler, "tick", lambda: ticks.append(time.monotonic()) or real_tick())
    thread = loop()
    wait_until(lambda: len(recoveries) >= 3, timeout=20, message="three tries of the failing duty")
    assert thread.is_alive() and len(ticks) >= 3


def test_an_outage_is_logged_once_waited_out_and_its_end_reported(
    loop: Callable[[], threading.Thread], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="engine.scheduler")
    calls: list[float] = []
    monkeypatch.setattr(
        scheduler,
        "fire_due_timers",
        _failing(fire_due_timers, calls, psycopg.OperationalError("server closed the connection"), times=4),
    )
    thread = loop()
    wait_until(lambda: "database available again" in caplog.text, timeout=30, message="the end of the outage")
    assert thread.is_alive()
    assert caplog.text.count("database unavailable, waiting for it") == 1
    pauses = [later - earlier for earlier, later in itertools.pairwise(calls[:5])]
    assert pauses == sorted(pauses) and pauses[-1] >= 2 * scheduler.OUTAGE_FIRST_PAUSE  # it backs off
