from __future__ import annotations

from tests.dashboard.support import (  # noqa: F401  (pytest fixtures)
    _real_database,
    count_queries,
    dash_functions,
    op_client,
    operator,
    viewer,
    viewer_client,
)
