"""AWS's URIs, exactly as botocore's ``lambda`` model writes them (at the site's root).

An ARN or callback id may hold ``/`` (or anything) once the server has decoded the path, hence ``anytext:``;
the routes with a suffix come before the bare ARN so that the suffix is never read as part of it.
"""

from __future__ import annotations

from django.urls import path, re_path, register_converter

from wire.views import api_operation, unknown_path


class AnyText:
    """Like Django's ``path:`` but across newlines too: a decoded ``%0A`` reaches the ARN check, not the dashboard's 404."""

    regex = r"[\s\S]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(AnyText, "anytext")

FUNCTIONS = "2015-03-31/functions"
EXECUTIONS = "2025-12-01/durable-executions/<anytext:DurableExecutionArn>"
CALLBACKS = "2025-12-01/durable-execution-callbacks/<anytext:CallbackId>"

functions = api_operation({"GET": "ListFunctions", "POST": "CreateFunction"})

urlpatterns = [
    path(FUNCTIONS, functions),
    path(f"{FUNCTIONS}/", functions),
    path(f"{FUNCTIONS}/<str:FunctionName>/invocations", api_operation({"POST": "Invoke"})),
    path(f"{FUNCTIONS}/<str:FunctionName>/code", api_operation({"PUT": "UpdateFunctionCode"})),
    path(f"{FUNCTIONS}/<str:FunctionName>/configuration", api_operation({"PUT": "UpdateFunctionConfiguration"})),
    path(f"{FUNCTIONS}/<str:FunctionName>", api_operation({"GET": "GetFunction"})),
    path(
        "2025-12-01/functions/<str:FunctionName>/durable-executions",
        api_operation({"GET": "ListDurableExecutionsByFunction"}),
    ),
    path(f"{EXECUTIONS}/history", api_operation({"GET": "GetDurableExecutionHistory"})),
    path(f"{EXECUTIONS}/state", api_operation({"GET": "GetDurableExecutionState"})),
    path(f"{EXECUTIONS}/checkpoint", api_operation({"POST": "CheckpointDurableExecution"})),
    path(f"{EXECUTIONS}/stop", api_operation({"POST": "StopDurableExecution"})),
    path(f"{EXECUTIONS}/pause", api_operation({"POST": "PauseDurableExecution"})),
    path(f"{EXECUTIONS}/resume", api_operation({"POST": "ResumeDurableExecution"})),
    path(EXECUTIONS, api_operation({"GET": "GetDurableExecution", "DELETE": "DeleteDurableExecution"})),
    path(f"{CALLBACKS}/succeed", api_operation({"POST": "SendDurableExecutionCallbackSuccess"})),
    path(f"{CALLBACKS}/fail", api_operation({"POST": "SendDurableExecutionCallbackFailure"})),
    path(f"{CALLBACKS}/heartbeat", api_operation({"POST": "SendDurableExecutionCallbackHeartbeat"})),
    re_path(r"^(?:2015-03-31|2025-12-01)(?:/(?P<rest>[\s\S]*))?\Z", unknown_path),
]
