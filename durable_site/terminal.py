"""What `make run` and the CLI print: quiet by default, every library's detail with ``-v``.

Quiet, the terminal shows one line per execution start, end and fault (``ActivityReport``, read
from the history by `make run`'s supervisor), the parts' own one-line start messages, warnings,
and what handlers print or log, tagged with their function and execution
(``[fraud-detection/tx-1] ...``). A fault the user injected (a kill, a Timeout) is one line, not
the tracebacks Celery, billiard and the SDK log for it: the engine records each one, and the
execution page shows it. ``-v`` (``DURABLE_VERBOSE=1``, which `make run` passes to its parts)
brings back every logger at ``DURABLE_LOG_LEVEL`` (INFO).

Imported by the settings: only the standard library at module level.
"""

from __future__ import annotations

import io
import logging
import os
import re
import sys
import warnings
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

VERBOSE_ENV = "DURABLE_VERBOSE"
# Set by `make run` for its parts: its supervisor prints the activity lines (ActivityReport).
SUPERVISED_ENV = "DURABLE_SUPERVISED"
# Commands whose -v/--verbose means "show the detail" (Django's own -v takes a level).
VERBOSE_COMMANDS = {"durable", "durable_up"}
_ARN_NAMES = re.compile(r":function:([^:/]+):[^/]*/durable-execution/([^/]+)/")
# Loggers of the machinery, never the handler's own output (even while an invocation runs).
_MACHINERY = (
    "engine",
    "celery",
    "kombu",
    "billiard",
    "multiprocessing",
    "psycopg",
    "aws_durable_execution_sdk_python",
    "gunicorn",
    "django",
)


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "").lower() in {"1", "true", "yes", "on"}


def note_verbose_flag(argv: Sequence[str]) -> None:
    """``manage.py durable -v …`` / ``durable_up -v``: set DURABLE_VERBOSE before the settings
    configure logging (and before the parts inherit the environment)."""
    if len(argv) > 1 and argv[1] in VERBOSE_COMMANDS and {"-v", "--verbose"} & set(argv[2:]):
        os.environ[VERBOSE_ENV] = "1"


def silence_known_warnings() -> None:
    """Warnings that say nothing a user can act on, on every start of every process."""
    # platformdirs (through pgserver's lock) falls back to /tmp/runtime-<uid>: that works.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    # Celery as root: the worker runs only this project's tasks, on a local broker.
    warnings.filterwarnings("ignore", message="You're running the worker with superuser privileges")


def logging_config(level: str) -> dict[str, Any]:
    """Django's LOGGING: quiet on the terminal unless DURABLE_VERBOSE.

    The loggers keep their levels either way (the root at INFO): an invocation's journal records
    its handler's INFO lines from the root logger. Quiet is a filter on the terminal's handler.
    """
    handler: dict[str, Any] = {"class": "logging.StreamHandler", "formatter": "terminal"}
    loggers: dict[str, Any] = {
        # django-axes logs every login at INFO; its lockouts and failures are WARNING.
        "django.db.backends": {"level": "INFO"},
        "axes": {"level": "WARNING"},
        # billiard's own logger does not propagate: without a handler its errors reach stderr raw.
        "multiprocessing": {"handlers": ["console"], "level": "WARNING", "propagate": False},
    }
    if not verbose():
        handler["filters"] = ["quiet"]
        loggers.update(
            {
                # A killed or timed-out pool child: the engine records it, `make run` says it in one line.
                "celery.worker.request": {"level": "CRITICAL"},
                "multiprocessing": {"handlers": ["console"], "level": "CRITICAL", "propagate": False},
                # kombu's filesystem:// has no host: "No hostname was supplied".
                "kombu.connection": {"level": "ERROR"},
            }
        )
    if os.environ.get(SUPERVISED_ENV) and not verbose():
        # A dead pool child: `make run`'s supervisor says which invocation, of which execution.
        loggers["engine.celery_tasks.lost"] = {"level": "ERROR"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"terminal": {"()": "durable_site.terminal.TerminalFormatter", "verbose": verbose()}},
        "filters": {"quiet": {"()": "durable_site.terminal.QuietFilter"}},
        "handlers": {"console": handler},
        "root": {"handlers": ["console"], "level": level},
        "loggers": loggers,
    }


class QuietFilter(logging.Filter):
    """What the quiet terminal shows: handler output, one-line news, and real warnings."""

    # INFO lines worth a line each: the activity report, "<worker> ready.", "web ready on …"
    # (durable.web), and which SDK seams the worker installed (said once at its start).
    # Gunicorn's own INFO lines (boot, every request) are detail: ``-v``.
    NEWS = ("durable.", "celery.apps.worker", "engine.speedups")
    # Logged with a traceback for what the engine records and `make run` reports in one line:
    # the SDK's "Execution failed" (the end line carries the error).
    RECORDED = ("aws_durable_execution_sdk_python",)

    def filter(self, record: logging.LogRecord) -> bool:
        if tag_of(record) is not None:
            return True
        if record.name.startswith(self.RECORDED):
            return False
        return record.levelno >= logging.WARNING or record.name.startswith(self.NEWS)


# --- handler output, tagged ------------------------------------------------------------------

_current_execution: dict[str, Any] = {"id": None, "tag": None}


def invocation_started(execution_id: int | None) -> None:
    """A worker child begins a task for ``execution_id`` (None: not a durable invocation)."""
    _current_execution.update(id=execution_id, tag=None)


def invocation_ended() -> None:
    _current_execution.update(id=None, tag=None)


def current_tag() -> str | None:
    """``function/execution`` of the invocation this process runs now, if any.

    The function's name is in the environment while its handler runs (``AWS_LAMBDA_FUNCTION_NAME``);
    the execution's name is read once per invocation, and only when the handler prints.
    """
    function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
    if function is None:
        return None
    if _current_execution["tag"] is None:
        name = _execution_name(_current_execution["id"]) if _current_execution["id"] is not None else None
        _current_execution["tag"] = f"{function}/{name}" if name else function
    return _current_execution["tag"]


def _execution_name(execution_id: int) -> str | None:
    try:
        from engine import db

        with db.transaction() as conn:
            row = conn.execute("SELECT name FROM durable_execution WHERE id = %s", (execution_id,)).fetchone()
    except Exception:  # the output still gets the function's name; a print must never fail
        return None
    return None if row is None else str(row["name"] if isinstance(row, dict) else row[0])


def tag_of(record: logging.LogRecord) -> str | None:
    """The function/execution a log record came from: the SDK's context logger names the ARN."""
    arn = getattr(record, "executionArn", None)
    if isinstance(arn, str):
        names = _ARN_NAMES.search(arn)
        if names:
            return f"{names.group(1)}/{names.group(2)}"
    if record.name.startswith(_MACHINERY):
        return None
    return current_tag()


class TerminalFormatter(logging.Formatter):
    """``HH:MM:SS [function/execution] message`` for handler output; level and logger name for
    warnings and, with ``-v``, for everything."""

    def __init__(self, verbose: bool = False) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.verbose = verbose
        self.short = logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        tag = tag_of(record)
        if tag is not None:
            record = logging.makeLogRecord({**record.__dict__, "msg": f"[{tag}] {record.getMessage()}", "args": ()})
        if self.verbose or (record.levelno >= logging.WARNING and tag is None):
            return super().format(record)
        return self.short.format(record)


class TaggedStdout(io.TextIOBase):
    """A worker child's stdout: what a handler prints goes out line by line, tagged."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._partial = ""

    def write(self, text: str) -> int:
        tag = current_tag()
        if tag is None and not self._partial:
            self._write(text)
            return len(text)
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            self._write(f"{_clock()} [{tag}] {line}\n" if tag else line + "\n")
        return len(text)

    def _write(self, text: str) -> None:
        """A handler's print never fails here, whatever it prints (a lone surrogate included)."""
        try:
            self._stream.write(text)
        except UnicodeEncodeError:
            encoding = self.encoding or "utf-8"
            self._stream.write(text.encode(encoding, "backslashreplace").decode(encoding))

    def flush(self) -> None:
        self._stream.flush()

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", "utf-8")


def _clock() -> str:
    import time

    return time.strftime("%H:%M:%S")


def tag_worker_stdout() -> None:
    """In a worker child: send handler prints to the terminal tagged (not as Celery's WARNING)."""
    if not isinstance(sys.stdout, TaggedStdout):
        sys.stdout = TaggedStdout(sys.stdout)


# --- the supervisor's activity lines ---------------------------------------------------------

_ENDINGS = {"ExecutionSucceeded", "ExecutionFailed", "ExecutionTimedOut", "ExecutionStopped"}
_FAULTS = {"Sandbox.Timedout": "timed out", "Runtime.ExitError": "was killed"}
# Event ids are taken in one order and committed in another: look back this far for late ones.
_LOOK_BACK = 1000
_activity = logging.getLogger("durable.activity")


class ActivityReport:
    """One line per execution start, end and invocation fault, read from the history.

    `make run`'s supervisor calls :meth:`poll` every round: one indexed query on the event
    table's primary key. It uses a plain connection (no pool threads: the supervisor forks).
    """

    def __init__(self, dsn: str, say: Any = None) -> None:
        self.dsn = dsn
        self.say = say or (lambda line: _activity.info("%s", line))
        self.conn: Any = None
        self.seen: set[int] = set()
        self.after: int | None = None
        self.start = 0
        self.faults_reported: set[tuple[int, int]] = set()

    def poll(self) -> None:
        try:
            rows = self._new_events()
        except Exception:  # an outage: the parts say so; the report resumes when it is back
            self.close()
            return
        for row in rows:
            line = describe(*row[1:7])
            if line is not None and self._first_report(row):
                self.say(line)

    def _first_report(self, row: tuple[Any, ...]) -> bool:
        """False for a second InvocationCompleted of one invocation (a lost invocation can be
        recorded by the worker's parent and the sweeper both): one fault, one line."""
        if row[1] != "InvocationCompleted":
            return True
        key = (row[7], row[5])
        if key in self.faults_reported:
            return False
        self.faults_reported.add(key)
        return True

    def _new_events(self) -> list[tuple[Any, ...]]:
        import psycopg

        if self.conn is None or self.conn.closed:
            self.conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=5)
        if self.after is None:  # what happened before this run is not news
            self.after = self.start = self.conn.execute("SELECT coalesce(max(id), 0) FROM durable_event").fetchone()[0]
        rows = self.conn.execute(
            """SELECT ev.id, ev.event_type, ev.doc, x.function_name, x.name, ev.invocation_seq,
                      ev.timestamp - x.started_at, ev.execution_id
               FROM durable_event ev JOIN durable_execution x ON x.id = ev.execution_id
               WHERE ev.id > %s AND ev.event_type IN
                 ('ExecutionStarted', 'ExecutionSucceeded', 'ExecutionFailed', 'ExecutionTimedOut',
                  'ExecutionStopped', 'InvocationCompleted')
               ORDER BY ev.id""",
            (max(self.start, self.after - _LOOK_BACK),),
        ).fetchall()
        fresh = [row for row in rows if row[0] not in self.seen]
        if rows:
            self.after = max(self.after, rows[-1][0])
        self.seen = {seen for seen in self.seen if seen > self.after - _LOOK_BACK} | {row[0] for row in fresh}
        return fresh

    def close(self) -> None:
        if self.conn is not None:
            with _suppressed():
                self.conn.close()
        self.conn = None


def describe(
    event_type: str, doc: dict[str, Any], function: str, name: str, seq: int | None, age: timedelta | None = None
) -> str | None:
    """The terminal line for one history event, or None if it is not one the terminal shows."""
    tag = f"[{function}/{name}]"
    if event_type == "ExecutionStarted":
        return f"{tag} started"
    if event_type in _ENDINGS:
        status = event_type.removeprefix("Execution").upper().replace("TIMEDOUT", "TIMED_OUT")
        error = _error_of(doc.get(f"{event_type}Details", {}))
        took = f" after {age.total_seconds():.1f} s" if age is not None else ""
        return f"{tag} {status}{took}" + (f": {error}" if error else "")
    details = doc.get("InvocationCompletedDetails", {})
    error_type = (details.get("Error") or {}).get("Payload", {}).get("ErrorType")
    if error_type is None:
        return None
    what = _FAULTS.get(error_type, "crashed")
    return f"{tag} invocation {seq} {what} ({_error_of(details)})"


def _error_of(details: dict[str, Any]) -> str:
    payload = (details.get("Error") or {}).get("Payload") or {}
    if not payload:
        return ""
    error_type = str(payload.get("ErrorType") or "")
    if error_type.count(".") > 1:  # a Python class path; Lambda's own types are "Runtime.ExitError"
        error_type = error_type.rsplit(".", 1)[-1]
    message = str(payload.get("ErrorMessage") or "").strip().split("\n", 1)[0][:200]
    return ": ".join(part for part in (error_type, message) if part)


def _suppressed() -> Any:
    import contextlib

    return contextlib.suppress(Exception)
