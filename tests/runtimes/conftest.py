"""Fixtures of the runtime tests: the engine's own (throwaway functions, a dispatcher that only
records) and the wire API's (the real web server the runtime's SDK checkpoints through)."""

from tests.engine.conftest import client, functions, no_scheduler, recorder
from tests.wire.conftest import _real_database, wire_server, wire_user

__all__ = ["_real_database", "client", "functions", "no_scheduler", "recorder", "wire_server", "wire_user"]
