"""The engine's tables, as read-only models for the dashboard.

The engine core reads and writes these tables with plain SQL (``engine/store.py``) and changes
them only through ``engine.client()`` (plus ``engine.faults`` / ``engine.effects``). The models
are the dashboard's one way to read them: unmanaged, and refusing every write, so a page cannot
change what the engine owns behind its back. The tables themselves are created by this app's
migrations (0001-0006 were written while the models were managed; 0007 only marks them unmanaged).
``makemigrations`` no longer compares their fields: change an engine table with a hand-written
migration (``RunSQL`` with ``state_operations``), and the model here to match.
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.db import models


class ReadOnlyError(Exception):
    """A write to an engine table through the ORM: go through ``engine.client()`` instead."""


def _refuse(what: str) -> NoReturn:
    raise ReadOnlyError(f"{what}: the engine's tables are read-only here; change them through engine.client()")


class ReadOnlyQuerySet(models.QuerySet[Any]):
    def create(self, **kwargs: Any) -> NoReturn:
        _refuse(f"{self.model.__name__}.objects.create()")

    def bulk_create(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse(f"{self.model.__name__}.objects.bulk_create()")

    def bulk_update(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse(f"{self.model.__name__}.objects.bulk_update()")

    def get_or_create(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse(f"{self.model.__name__}.objects.get_or_create()")

    def update_or_create(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse(f"{self.model.__name__}.objects.update_or_create()")

    def update(self, **kwargs: Any) -> NoReturn:
        _refuse(f"{self.model.__name__}.objects.update()")

    def delete(self) -> NoReturn:
        _refuse(f"{self.model.__name__}.objects.delete()")


class EngineRow(models.Model):
    """A row the engine owns: readable through ``objects``, never saved or deleted from Django."""

    objects = models.Manager.from_queryset(ReadOnlyQuerySet)()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse(f"{type(self).__name__}.save()")

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse(f"{type(self).__name__}.delete()")


class Function(EngineRow):
    name = models.CharField(primary_key=True, max_length=64)
    handler = models.CharField(max_length=256)
    description = models.CharField(max_length=256, blank=True, default="")
    timeout = models.PositiveIntegerField(default=3, help_text="Per-invocation limit, seconds")
    durable_config = models.JSONField(null=True, blank=True)
    environment = models.JSONField(default=dict, blank=True)
    maximum_retry_attempts = models.PositiveSmallIntegerField(default=2)
    invocation_retry = models.JSONField(default=dict, blank=True)
    revision_id = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    last_modified = models.DateTimeField()
    runtime = models.CharField(max_length=32, null=True)
    code_sha256 = models.CharField(max_length=64, null=True)
    code_size = models.BigIntegerField(null=True)

    class Meta:
        db_table = "durable_function"
        managed = False
        ordering = ["name"]

    def __str__(self) -> str:
        return str(self.name)


class Execution(EngineRow):
    arn = models.CharField(max_length=512, unique=True)
    function_name = models.CharField(max_length=64, db_index=True)
    name = models.CharField(max_length=64)
    input = models.TextField(null=True)
    status = models.CharField(max_length=16)
    result = models.TextField(null=True)
    error = models.JSONField(null=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True)
    execution_timeout = models.PositiveIntegerField()
    retention_days = models.PositiveSmallIntegerField(default=14)
    time_scale = models.FloatField(default=1.0)
    invocation_type = models.CharField(max_length=16, default="Event")
    # Invocation control: at most one invocation holds the lease at a time.
    invocation_seq = models.PositiveIntegerField(default=0)
    token_seq = models.PositiveIntegerField(default=0)
    running = models.BooleanField(default=False)
    lease_until = models.DateTimeField(null=True)
    needs_invoke = models.BooleanField(default=False)
    invoke_reason = models.CharField(max_length=32, default="start")
    dispatched_at = models.DateTimeField(null=True)
    # Messages sent again for the same owed invocation (see ``engine.duties.sweep.redispatch_stranded``).
    redispatches = models.PositiveIntegerField(db_default=0)
    consecutive_failures = models.PositiveIntegerField(default=0)
    # Change tracking for checkpoint responses: op touch counter and the handler's watermark.
    op_seq = models.BigIntegerField(default=0)
    seen_seq = models.BigIntegerField(default=0)
    event_seq = models.PositiveIntegerField(default=0)
    parent_arn = models.CharField(max_length=512, null=True)
    parent_op_id = models.CharField(max_length=64, null=True)
    counters = models.JSONField(default=dict)
    # Set when the SDK closes the execution from a checkpoint (an oversized result): applied when
    # that invocation ends, so InvocationCompleted precedes ExecutionSucceeded/Failed.
    pending_finish = models.JSONField(null=True)
    # PauseDurableExecution: PAUSING while the invocation that was running at the pause goes on to
    # its next checkpoint, PAUSED after; null when not paused. No invocation is claimed meanwhile.
    # ``pause`` holds the request (time, reason, whether the execution timeout is paused too).
    pause_state = models.CharField(max_length=16, null=True)
    pause = models.JSONField(null=True)
    # Set when a background loop (timers, recovery, re-dispatch) failed on the execution again and
    # again: the loops leave it alone from then on. ``quarantine`` says which loop, how often,
    # since when and the last error. Setting both back to null lets the loops take it up again.
    quarantined_at = models.DateTimeField(null=True)
    quarantine = models.JSONField(null=True)

    class Meta:
        db_table = "durable_execution"
        managed = False
        constraints = [
            models.UniqueConstraint(fields=["function_name", "name"], name="durable_execution_unique_name"),
        ]
        indexes = [
            models.Index(fields=["-started_at", "-id"], name="durable_exec_started"),
            models.Index(fields=["status", "-started_at"], name="durable_exec_status"),
            models.Index(fields=["function_name", "-started_at"], name="durable_exec_function"),
            # The list page counts quarantined executions on every render: a few rows, never a scan.
            models.Index(
                fields=["quarantined_at"],
                condition=models.Q(quarantined_at__isnull=False),
                name="durable_exec_quarantined",
            ),
        ]

    def __str__(self) -> str:
        return str(self.arn)

    @property
    def shown_status(self) -> str:
        """The status as AWS reports it: a running execution's pause state (PAUSING, PAUSED) if any."""
        return str(self.pause_state or self.status)


class Operation(EngineRow):
    # No index of its own: the unique (execution, op_id) one serves (migration 0013).
    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="operations", db_index=False)
    op_id = models.CharField(max_length=64)
    ordinal = models.PositiveIntegerField()
    parent_id = models.CharField(max_length=64, null=True)
    name = models.CharField(max_length=256, null=True)
    type = models.CharField(max_length=16)
    sub_type = models.CharField(max_length=32, null=True)
    status = models.CharField(max_length=16)
    attempt = models.PositiveIntegerField(default=0)
    touch_seq = models.BigIntegerField(default=0)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True)
    callback_id = models.CharField(max_length=128, null=True, unique=True)  # among callbacks (migration 0013)
    doc = models.JSONField()
    # A chained invoke's outcome that arrived while an invocation ran, applied when it ends.
    deferred_outcome = models.JSONField(null=True)

    class Meta:
        db_table = "durable_operation"
        managed = False
        constraints = [
            models.UniqueConstraint(fields=["execution", "op_id"], name="durable_operation_unique_id"),
        ]
        indexes = [
            models.Index(fields=["execution", "ordinal"], name="durable_op_ordinal"),
            models.Index(
                fields=["execution"],
                name="durable_op_open_callbacks",
                condition=models.Q(type="CALLBACK", status="STARTED"),
            ),
        ]


class Event(EngineRow):
    # No index of its own: the unique (execution, event_id) one serves (migration 0013).
    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="events", db_index=False)
    event_id = models.PositiveIntegerField()
    event_type = models.CharField(max_length=32)
    timestamp = models.DateTimeField()
    op_id = models.CharField(max_length=64, null=True)
    invocation_seq = models.PositiveIntegerField(null=True)
    doc = models.JSONField()

    class Meta:
        db_table = "durable_event"
        managed = False
        constraints = [
            models.UniqueConstraint(fields=["execution", "event_id"], name="durable_event_unique_id"),
        ]


class Invocation(EngineRow):
    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="invocations")
    seq = models.PositiveIntegerField()
    request_id = models.CharField(max_length=64)
    reason = models.CharField(max_length=32)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True)
    deadline = models.DateTimeField()
    outcome = models.CharField(max_length=16, null=True)
    error = models.JSONField(null=True)
    worker = models.CharField(max_length=128, default="")
    pid = models.IntegerField(null=True)
    # When the message that started it was sent: how far the workers have read the queue.
    dispatched_at = models.DateTimeField(null=True, db_index=True)

    class Meta:
        db_table = "durable_invocation"
        managed = False
        constraints = [
            models.UniqueConstraint(fields=["execution", "seq"], name="durable_invocation_unique_seq"),
        ]


class Timer(EngineRow):
    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="timers")
    kind = models.CharField(max_length=32)
    op_id = models.CharField(max_length=64, default="")
    due_at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "durable_timer"
        managed = False
        constraints = [
            models.UniqueConstraint(fields=["execution", "kind", "op_id"], name="durable_timer_unique"),
        ]


class BodyRun(EngineRow):
    """One run of a step body in one invocation (from the invocation journal)."""

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="body_runs")
    op_id = models.CharField(max_length=64)
    name = models.CharField(max_length=256, null=True)
    invocation_seq = models.PositiveIntegerField()
    attempt = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True)
    outcome = models.CharField(max_length=16)

    class Meta:
        db_table = "durable_body_run"
        managed = False
        indexes = [models.Index(fields=["execution", "started_at"], name="durable_body_run_exec")]


class LogLine(EngineRow):
    """A log line of one invocation: the SDK logger's records and the handler's output."""

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="log_lines")
    invocation_seq = models.PositiveIntegerField()
    at = models.DateTimeField()
    level = models.CharField(max_length=16)
    logger = models.CharField(max_length=128)
    message = models.TextField()
    op_id = models.CharField(max_length=64, null=True)

    class Meta:
        db_table = "durable_log"
        managed = False
        indexes = [models.Index(fields=["execution", "at"], name="durable_log_exec")]


class Effect(EngineRow):
    """A side effect a handler performed (``engine.effects.record``), to count duplicates."""

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="effects")
    op_id = models.CharField(max_length=64, null=True)
    invocation_seq = models.PositiveIntegerField(null=True)
    attempt = models.PositiveIntegerField(null=True)
    at = models.DateTimeField()
    kind = models.CharField(max_length=64)
    key = models.CharField(max_length=256)
    idempotency_key = models.CharField(max_length=256, null=True)
    performed = models.BooleanField(default=True)
    duplicate = models.BooleanField(default=False)

    class Meta:
        db_table = "durable_effect"
        managed = False
        indexes = [
            models.Index(fields=["execution", "at"], name="durable_effect_exec"),
            models.Index(fields=["kind", "key"], name="durable_effect_key"),
        ]


class Fault(EngineRow):
    """An injected fault: kill the running invocation now, or at a step's body start / after its body."""

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="faults")
    kind = models.CharField(max_length=32)
    step_name = models.CharField(max_length=256, null=True)
    phase = models.CharField(max_length=16)
    armed_at = models.DateTimeField()
    armed_by = models.CharField(max_length=150, default="")
    fired_at = models.DateTimeField(null=True)
    invocation_seq = models.PositiveIntegerField(null=True)

    class Meta:
        db_table = "durable_fault"
        managed = False


class AsyncInvocation(EngineRow):
    """One invocation of a plain (non-durable) function: Event ones are retried, then dead-lettered.

    ``request_id`` stays the same across the retries of one event, as Lambda's does; a redrive
    from the dead-letter queue is a new invocation pointing back at the dead one.
    """

    request_id = models.CharField(max_length=64, unique=True)
    function_name = models.CharField(max_length=64)
    invocation_type = models.CharField(max_length=16)
    payload = models.TextField(null=True)
    time_scale = models.FloatField(default=1.0)
    status = models.CharField(max_length=16)
    max_attempts = models.PositiveSmallIntegerField(default=3)
    attempt_count = models.PositiveSmallIntegerField(default=0)
    attempts = models.JSONField(default=list)
    next_attempt_at = models.DateTimeField(null=True)
    lease_until = models.DateTimeField(null=True)
    result = models.TextField(null=True)
    error = models.JSONField(null=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    dead_lettered_at = models.DateTimeField(null=True)
    redriven_at = models.DateTimeField(null=True)
    redrive_of = models.ForeignKey("self", null=True, on_delete=models.SET_NULL, related_name="redrives")

    class Meta:
        db_table = "durable_async_invocation"
        managed = False
        indexes = [
            models.Index(fields=["status", "-created_at"], name="durable_async_status"),
            models.Index(fields=["function_name", "-created_at"], name="durable_async_function"),
        ]


class Worker(EngineRow):
    """A worker process on some host (issue 19): ``role`` is "main" (the Celery parent, which
    renews the host's lease) or "pool" (a child that runs invocations). A host is live while one
    of its processes' ``heartbeat_at`` is within the lease; ``lost_at`` is set when another host
    found it gone and recorded its invocations lost."""

    host_id = models.CharField(max_length=128)
    hostname = models.CharField(max_length=255)
    pid = models.IntegerField()
    role = models.CharField(max_length=8)
    started_at = models.DateTimeField()
    heartbeat_at = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True)
    lost_at = models.DateTimeField(null=True)

    class Meta:
        db_table = "durable_worker"
        managed = False
