"""Runtime processes: start one per RUNTIME_PROTOCOL.md, keep it warm, exchange one line per invocation.

Requests go to the child's stdin, answers come back on its file descriptor 3, one JSON object a
line; its stdout and stderr are the invocation's log lines. Everything is read in one loop with
a deadline, so a handler that hangs, floods its output or dies is noticed at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any

PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)  # loaded now: the forked child must not load libraries
MAX_LINE = 64 * 1024 * 1024
READ_CHUNK = 65536

LogSink = Callable[[str, str], None]  # (stream name, line)
# A step body's start or end, or a side effect, the runtime reports ({"record": {...}} on fd 3).
# It waits for the answer ({"continue": true} and what the sink returns) before the body goes on,
# so a sink that raises stops it where it is.
RecordSink = Callable[[dict[str, Any]], dict[str, Any] | None]


class RuntimeFailure(Exception):
    """The exchange failed; ``error`` is the error object recorded on the invocation."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error = {"ErrorType": error_type, "ErrorMessage": message}


def _child_setup(answer_fd: int) -> None:
    """In the forked child, before exec: answers on fd 3; die with the worker process that started it."""
    if answer_fd != 3:
        os.dup2(answer_fd, 3)  # dup2's copy is inheritable: it survives exec
    else:
        os.set_inheritable(3, True)
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class RuntimeProcess:
    """One runtime child: started, made ready, then asked one invocation at a time."""

    def __init__(self, argv: list[str], cwd: str, env: dict[str, str]) -> None:
        self.argv = argv
        self.last_used = time.monotonic()
        self.access_key_id = env.get("AWS_ACCESS_KEY_ID")
        reader, writer = os.pipe()
        try:
            self.proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                close_fds=False,  # the pipe's other ends are non-inheritable; fd 3 must survive exec
                preexec_fn=lambda: _child_setup(writer),
                start_new_session=True,
            )
        except OSError as exc:
            os.close(reader)
            raise RuntimeFailure("Runtime.InvalidEntrypoint", f"Runtime could not start ({argv[0]}): {exc}") from exc
        finally:
            os.close(writer)
        self.answers = reader
        self._buffers: dict[int, bytearray] = {}

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_ready(self, deadline: float, sink: LogSink) -> None:
        """Wait for the ready line; a child that exits first is an init error (it would again)."""
        try:
            answer = self._exchange(None, deadline, sink)
        except RuntimeFailure as exc:
            if exc.error["ErrorType"] != "Runtime.ExitError":
                raise
            raise RuntimeFailure("Runtime.InitError", f"{exc.error['ErrorMessage']} before it was ready") from exc
        if answer.get("ready") is True:
            return
        given = answer.get("error")
        error: dict[str, Any] = given if isinstance(given, dict) else {}
        self.kill()
        raise RuntimeFailure(
            str(error.get("errorType") or "Runtime.InitError"),
            str(error.get("errorMessage") or f"Runtime was not ready: {json.dumps(answer)[:300]}"),
        )

    def invoke(
        self, request: dict[str, Any], deadline: float, sink: LogSink, on_record: RecordSink | None = None
    ) -> dict[str, Any]:
        self.last_used = time.monotonic()
        line = (json.dumps(request, separators=(",", ":"), default=str) + "\n").encode()
        return self._exchange(line, deadline, sink, on_record)

    def _exchange(
        self, request: bytes | None, deadline: float, sink: LogSink, on_record: RecordSink | None = None
    ) -> dict[str, Any]:
        """Send ``request`` (if any), then read until one answer line; logs flow to ``sink`` and
        step bodies' records to ``on_record`` meanwhile."""
        assert self.proc.stdin and self.proc.stdout and self.proc.stderr
        pending = memoryview(request or b"")
        names = {self.proc.stdout.fileno(): "stdout", self.proc.stderr.fileno(): "stderr", self.answers: "answer"}
        with selectors.DefaultSelector() as selector:
            for fd in names:
                os.set_blocking(fd, False)
                selector.register(fd, selectors.EVENT_READ)
            stdin = self.proc.stdin.fileno()
            if pending:
                os.set_blocking(stdin, False)
                selector.register(stdin, selectors.EVENT_WRITE)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _Timeout
                for key, _ in selector.select(remaining):
                    fd = key.fd
                    if fd == stdin:
                        pending = self._write(stdin, pending, selector)
                        continue
                    answer = self._read(fd, names[fd], selector, sink)
                    while answer is not None and "record" in answer:
                        self._drain_logs(names, selector, sink)  # what the body printed before it
                        self._take_record(answer["record"], on_record, stdin)
                        answer = self._buffered_answer()
                    if answer is not None:
                        self._drain_logs(names, selector, sink)
                        return answer

    def _take_record(self, record: Any, on_record: RecordSink | None, stdin: int) -> None:
        """Hand a record to ``on_record`` (which may raise, leaving the runtime waiting), then let
        the runtime go on."""
        reply = on_record(record) if on_record is not None and isinstance(record, dict) else None
        line = json.dumps({"continue": True, **(reply or {})}, separators=(",", ":")) + "\n"
        with contextlib.suppress(BrokenPipeError, BlockingIOError):  # gone: its answer pipe says so next
            os.write(stdin, line.encode())

    def _drain_logs(self, names: dict[int, str], selector: selectors.BaseSelector, sink: LogSink) -> None:
        """The log lines already written when the answer came: this invocation's, not the next one's."""
        for fd, name in names.items():
            if name != "answer" and fd in selector.get_map():
                self._read(fd, name, selector, sink)

    def _write(self, fd: int, pending: memoryview, selector: selectors.BaseSelector) -> memoryview:
        try:
            sent = os.write(fd, pending)
        except BrokenPipeError:
            selector.unregister(fd)
            return memoryview(b"")  # the child is gone: its answer pipe says so next
        pending = pending[sent:]
        if not pending:
            selector.unregister(fd)
        return pending

    def _read(self, fd: int, name: str, selector: selectors.BaseSelector, sink: LogSink) -> dict[str, Any] | None:
        try:
            chunk = os.read(fd, READ_CHUNK)
        except BlockingIOError:
            return None
        buffer = self._buffers.setdefault(fd, bytearray())
        if not chunk:
            selector.unregister(fd)
            if name != "answer":
                if buffer:
                    sink(name, buffer.decode(errors="replace"))
                    buffer.clear()
                return None
            raise self._died()
        buffer += chunk
        if name == "answer":
            answer = self._buffered_answer()
            if answer is not None:
                return answer
        else:
            while b"\n" in buffer:
                line, _, rest = bytes(buffer).partition(b"\n")
                buffer[:] = rest
                sink(name, line.decode(errors="replace"))
        if len(buffer) > MAX_LINE:
            raise RuntimeFailure("Runtime.InvalidResponse", f"Runtime wrote a {name} line over {MAX_LINE} bytes.")
        return None

    def _buffered_answer(self) -> dict[str, Any] | None:
        """The next whole line already read from the answer pipe, if there is one."""
        buffer = self._buffers.setdefault(self.answers, bytearray())
        if b"\n" not in buffer:
            return None
        line, _, rest = bytes(buffer).partition(b"\n")
        buffer[:] = rest
        return _answer(line)

    def _died(self) -> RuntimeFailure:
        try:
            code = self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:  # it closed fd 3 but lives on: that breaks the protocol too
            self.kill()
            return RuntimeFailure("Runtime.InvalidResponse", "Runtime closed its answer pipe (fd 3).")
        how = f"signal {-code}" if code < 0 else f"exit status {code}"
        return RuntimeFailure("Runtime.ExitError", f"Runtime exited with error: {how}")

    def kill(self) -> None:
        """SIGKILL the child and everything it started (its own session), and reap it."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self.close()

    def close(self) -> None:
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        with contextlib.suppress(OSError):
            os.close(self.answers)
        self.answers = -1

    def stop(self) -> None:
        """End a warm child politely (EOF on stdin), or kill it if it lingers."""
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=2)
        self.kill()


class _Timeout(Exception):
    """The invocation's deadline passed while waiting for the runtime."""


Timeout = _Timeout


def _answer(line: bytes) -> dict[str, Any]:
    try:
        answer = json.loads(line)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise RuntimeFailure(
            "Runtime.InvalidResponse", f"Runtime wrote a line that is not a JSON object: {line[:200]!r}"
        )
    return answer
