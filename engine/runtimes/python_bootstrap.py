"""Durable Lab's Python runtime bootstrap (RUNTIME_PROTOCOL.md): stdlib only, plus the handler's own SDK.

Started as ``<python> python_bootstrap.py`` in the function's unpacked code directory, it loads
``_HANDLER`` (``module.attr``; the module may sit in a sub-package, ``pkg.module.attr``), says
``{"ready": true}`` on file descriptor 3, then answers one request line from stdin at a time.
Only this file (and the step-body record it loads, ``python_record/``) writes to fd 3: the
handler's stdout and stderr are its log.
"""

from __future__ import annotations  # the annotations are never evaluated: any Python 3 runs this

import importlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from importlib import metadata
from typing import IO, Any

ANSWERS = 3


def answer(stream: IO[str], document: dict[str, Any]) -> None:
    stream.write(json.dumps(document, separators=(",", ":")) + "\n")
    stream.flush()


def error_document(error_type: str, message: str, exc: BaseException | None = None) -> dict[str, Any]:
    trace = traceback.format_exception(exc)[-20:] if exc is not None else []
    return {"errorType": error_type, "errorMessage": message, "stackTrace": trace}


class Context:
    """The subset of Lambda's Python context object that handlers and the SDK read."""

    def __init__(self, doc: dict[str, Any]) -> None:
        name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", doc.get("functionName", ""))
        self.aws_request_id = doc.get("awsRequestId", "")
        self.function_name = doc.get("functionName", name)
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"
        self.memory_limit_in_mb = 128
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = f"durable-lab/{self.aws_request_id}"
        self.tenant_id = doc.get("tenantId")
        self._deadline_ms = doc.get("deadlineMs") or 0

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self._deadline_ms - time.time() * 1000))


def load_handler(spec: str) -> tuple[Callable[..., Any] | None, dict[str, Any] | None]:
    """Return (handler, None) or (None, the error Lambda's Python runtime reports)."""
    module_name, _, attr = spec.rpartition(".")
    if not module_name or not attr:
        return None, error_document(
            "Runtime.MalformedHandlerName", f"Bad handler '{spec}': not enough values to unpack"
        )
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        return None, error_document("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}", exc)
    except SyntaxError as exc:
        return None, error_document(
            "Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}", exc
        )
    except Exception as exc:  # the module's own code raised as it loaded
        return None, error_document(type(exc).__name__, str(exc) or type(exc).__name__, exc)
    handler = getattr(module, attr, None)
    if not callable(handler):
        return None, error_document("Runtime.HandlerNotFound", f"Handler '{attr}' missing on module '{module_name}'")
    return handler, None


def serve(handler: Callable[..., Any], requests: Iterable[str], answers: IO[str]) -> None:
    for line in requests:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            result = handler(request["event"], Context(request.get("context") or {}))
        except Exception as exc:
            answer(answers, {"error": error_document(type(exc).__name__, str(exc) or type(exc).__name__, exc)})
            continue
        try:
            text = json.dumps({"output": result}, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            answer(answers, {"error": error_document("Runtime.MarshalError", f"Unable to marshal response: {exc}")})
            continue
        answers.write(text + "\n")
        answers.flush()


RECORD_PLUGIN = "durable-lab-record"
SDK = "aws-durable-execution-sdk-python"


def calls_plugins_in_step(version: str) -> bool:
    """SDK 3 calls a plugin's hooks on the step's own thread, before and after its body; SDK 2
    calls them later, on a thread pool of its own, which can neither stop a body nor say when it
    ran."""
    major = version.split(".", 1)[0]
    return major.isdigit() and int(major) >= 3


def open_record_channel(answers: IO[str]) -> None:
    """Open ``python_record/durable_lab.py``'s channel over the answer pipe and stdin (its
    ``record_effect``), and let the SDK load it as the step-body record where the SDK can host
    it; elsewhere handlers run unrecorded."""
    sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "python_record"))
    try:
        import durable_lab  # type: ignore[import-not-found]  # (on the path set above)

        version = metadata.version(SDK)
    except (ImportError, metadata.PackageNotFoundError):
        return
    durable_lab.channel = (lambda record: answer(answers, record), sys.stdin.readline)
    configured = os.environ.get("DURABLE_EXECUTION_PLUGINS", "")
    if calls_plugins_in_step(version) and RECORD_PLUGIN not in configured.split(","):
        os.environ["DURABLE_EXECUTION_PLUGINS"] = ",".join(filter(None, [configured, RECORD_PLUGIN]))


def main() -> int:
    answers = os.fdopen(ANSWERS, "w", encoding="utf-8")
    root = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    here = os.path.dirname(os.path.abspath(__file__))  # Python put it first: not the handler's to import from
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or ".") != here or entry == root]
    if root not in sys.path:
        sys.path.insert(0, root)
    open_record_channel(answers)
    handler, error = load_handler(os.environ.get("_HANDLER", ""))
    if error is not None:
        answer(answers, {"ready": False, "error": error})
        return 1
    answer(answers, {"ready": True})
    assert handler is not None
    serve(handler, sys.stdin, answers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
