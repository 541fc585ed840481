"""Run one invocation of a durable handler file, as Lambda's Python runtime would, in this process.

    python handler_runner.py CODE_DIR MODULE.ATTR INPUT.json OUTPUT.json REQUEST_ID DEADLINE_MS

It reads the invocation input (the JSON Lambda hands a durable function), calls the handler with
a context, and writes the handler's output as JSON. It imports nothing from Durable Lab: the
SDK builds its own ``boto3.client("lambda")``, which finds Durable Lab through
``AWS_ENDPOINT_URL_LAMBDA`` and signs with the key in ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any


class Context:
    """The parts of Lambda's context object the SDK reads."""

    def __init__(self, request_id: str, deadline_ms: int) -> None:
        self.aws_request_id = request_id
        self.tenant_id = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def main(code_dir: str, handler_name: str, input_path: str, output_path: str, request_id: str, deadline: str) -> None:
    sys.path.insert(0, code_dir)
    module_name, _, attr = handler_name.rpartition(".")
    handler = getattr(importlib.import_module(module_name), attr)
    event = json.loads(Path(input_path).read_text())
    output: Any = handler(event, Context(request_id, int(deadline)))
    Path(output_path).write_text(json.dumps(output))


if __name__ == "__main__":
    main(*sys.argv[1:])
