"""AWS's durable-execution conformance requirements, run on the engine.

Shared by the test suite (tests/conformance) and the bench (B8c): where the requirements come
from (``requirements``), the driver that runs one and checks its history (``runner``, ``matcher``)
and the handlers written from each requirement's text (``handlers.<suite>``).
"""

SUITES = (
    "step",
    "wait",
    "child",
    "parallel",
    "callback",
    "wait_for_callback",
    "invoke",
    "map",
    "wait_for_condition",
    "plugin",
)
HANDLERS = "conformance.handlers"


def handler_module(suite: str) -> str:
    return f"{HANDLERS}.{suite}"
