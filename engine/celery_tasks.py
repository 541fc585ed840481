"""The only Celery import of the engine: tasks carry ids, the durable state lives in PostgreSQL."""

from __future__ import annotations

import importlib
import logging
import os
from typing import Any, NoReturn

from billiard.einfo import ExceptionInfo
from billiard.exceptions import WorkerLostError
from celery import Task, shared_task
from celery.signals import celeryd_init, worker_init, worker_process_init, worker_process_shutdown, worker_shutdown
from celery.worker.request import Request

from engine import async_invoke, db, invoker, speedups, worker_host
from engine.duties.loops import is_outage
from engine.duties.sweep import mark_process_lost
from engine.duties.unit import PlainCall

log = logging.getLogger(__name__)
# Its own logger: under `make run` the supervisor reports each fault, by name, from the history.
lost_log = logging.getLogger(f"{__name__}.lost")


def _load_project_app() -> None:
    """Import the project's Celery app first (Django's ``DURABLE_CELERY_APP``): the tasks below
    bind to the current app when used, and it must be the configured one, not Celery's default."""
    from django.conf import settings

    app_module = getattr(settings, "DURABLE_CELERY_APP", None) if settings.configured else None
    if app_module:
        importlib.import_module(app_module)


_load_project_app()
TIME_LIMIT_GRACE = 0.5
OUTAGE_RETRY_MAX = 10.0  # seconds between tries while the database cannot be reached
WORKER_LOST_WAIT = 0.2  # seconds the worker's parent waits before reporting a dead child's task


def _retry_outage(task: Task, exc: Exception) -> NoReturn:
    """Send the message again (after a growing pause) if the database is unreachable, else raise.

    The task's durable state is in PostgreSQL, so a retried message is as harmless as a
    duplicate one; the worker process itself never stops for an outage.
    """
    if not is_outage(exc):
        raise exc
    db.drop_broken_connections()
    countdown = min(OUTAGE_RETRY_MAX, 0.5 * 2 ** min(task.request.retries, 5))
    log.warning("database unavailable in %s (%s); trying again in %.1f s", task.name, exc, countdown)
    raise task.retry(exc=exc, countdown=countdown, max_retries=None)


class InvocationRequest(Request):
    """``run_invocation``'s request as the worker's parent process sees it: when the pool child
    running it dies, the invocation is recorded lost at once (``engine.duties.sweep.mark_process_lost``)
    rather than when the scheduler next notices, or the invocation's lease runs out."""

    def on_failure(self, exc_info: ExceptionInfo, send_failed_event: bool = True, return_ok: bool = False) -> None:
        super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)
        exc = getattr(exc_info.exception, "exc", exc_info.exception)  # unwrap ExceptionWithTraceback
        if isinstance(exc, WorkerLostError) and self.worker_pid:
            _record_lost_child(int(self.args[0]), int(self.worker_pid))


def _record_lost_child(execution_id: int, pid: int) -> None:
    try:
        recorded = mark_process_lost(execution_id, pid)
    except Exception:  # the parent must go on serving its pool; the scheduler's sweep records it later
        log.warning("could not record the lost invocation of execution %s now", execution_id, exc_info=True)
        return
    if recorded:
        lost_log.warning(
            "execution %s: its invocation's process %s died; recorded and invoked again", execution_id, pid
        )


@celeryd_init.connect
def _notice_lost_children_quickly(conf: Any, **_: Any) -> None:
    """Report a dead pool child's task after ``WORKER_LOST_WAIT`` rather than Celery's 10 s.

    Celery waits that long for a result the child may have sent before it died; these tasks keep
    their outcome in PostgreSQL, not in a result, so there is nothing to wait for."""
    conf.worker_lost_wait = min(float(conf.worker_lost_wait), WORKER_LOST_WAIT)


@shared_task(
    bind=True,
    name="durable.run_invocation",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    Request=InvocationRequest,
)
def run_invocation(self: Task, execution_id: int, generation: int | None = None) -> bool:
    """Run the execution's owed invocation; a redelivered, duplicate or superseded message
    (``generation``: a re-dispatch's) finds nothing to do."""
    try:
        return invoker.run_invocation(execution_id, in_sandbox=True, generation=generation)
    except Exception as exc:
        _retry_outage(self, exc)


@shared_task(bind=True, name="durable.call_plain_function", acks_late=True, ignore_result=True)
def call_plain_function(self: Task, execution_id: int, op_id: str, function_name: str, payload: str | None) -> None:
    try:
        invoker.call_plain_function(PlainCall(execution_id, op_id, function_name, payload))
    except Exception as exc:
        _retry_outage(self, exc)


@shared_task(
    bind=True, name="durable.run_async_invocation", acks_late=True, reject_on_worker_lost=True, ignore_result=True
)
def run_async_invocation(self: Task, invocation_id: int) -> bool:
    """Run a plain function's due Event attempt; a duplicate message finds it claimed and does nothing."""
    try:
        return async_invoke.run_attempt(invocation_id)
    except Exception as exc:
        _retry_outage(self, exc)


@worker_init.connect
def _install_speedups(**_: Any) -> None:
    """The worker runs invocations: it takes the SDK seams (``engine.speedups``) as it starts, so
    pool children forked from it inherit them. ``DURABLE_SDK_SPEEDUPS=off`` runs the SDK as shipped."""
    if os.environ.get("DURABLE_SDK_SPEEDUPS", "on").lower() not in {"off", "0", "false", "no"}:
        speedups.install()


@worker_process_init.connect
def _prepare_pool_child(sender: Any = None, **_: Any) -> None:
    """A pool child registers itself in durable_worker and freezes its startup heap before its
    first task, not during it; it installs the seams itself too (idempotent), for a pool that
    does not fork from the worker."""
    _install_speedups()
    worker_host.register_pool_process(str(sender or ""))
    invoker.freeze_startup_heap()


# The parent's registration, lease and control listener (engine.worker_host); None until the
# worker starts, and in every process that is not a Celery worker's parent.
_host: worker_host.WorkerHost | None = None


@worker_init.connect
def _keep_lease(sender: Any = None, **_: Any) -> None:
    """The worker's parent registers itself and keeps its processes' lease from now on."""
    global _host
    _host = worker_host.WorkerHost.for_node(str(getattr(sender, "hostname", "") or ""))
    _host.start()


@worker_shutdown.connect
def _give_up_lease(**_: Any) -> None:
    """A clean stop says goodbye: its rows are stopped, so no host waits out its lease."""
    if _host is not None:
        _host.stop()


@worker_process_shutdown.connect
def _stop_runtime_processes(**_: Any) -> None:
    """A pool child that ends stops its warm runtime processes (one it did not end dies with it anyway)."""
    from engine.runtimes.invoke import stop_all

    stop_all()


def load_broker_transport() -> None:
    """Import the broker's transport now. kombu imports it (for Redis: redis-py) when the first
    message is sent, ~100 ms that a long-running process (web server, scheduler) should pay as it
    starts rather than in a user's first start or a timer's first firing. Nothing connects."""
    with run_invocation.app.connection_for_write() as connection:
        connection.get_transport_cls()


class CeleryDispatcher:
    """Queue invocations on Celery; the hard time limit is the function's Timeout (it kills)."""

    def invoke(self, execution_id: int, timeout: float) -> None:
        run_invocation.apply_async((execution_id,), time_limit=timeout + TIME_LIMIT_GRACE)

    def redispatch(self, execution_id: int, timeout: float, generation: int) -> None:
        run_invocation.apply_async((execution_id, generation), time_limit=timeout + TIME_LIMIT_GRACE)

    def call_plain(self, call: PlainCall) -> None:
        args: tuple[Any, ...] = (call.execution_id, call.op_id, call.function_name, call.payload)
        call_plain_function.apply_async(args)

    def run_async_invocation(self, invocation_id: int, countdown: float) -> None:
        run_async_invocation.apply_async((invocation_id,), countdown=max(0.0, countdown))
