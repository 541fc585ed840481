"""Fuzz every query parameter and text URL segment of every GET page: no 500, no traceback, no write."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab.demos import DEMOS
from tests.dashboard.support import make_user
from tests.fuzz.conftest import assert_rejection_stores_nothing
from tests.fuzz.hostile import WEB_SEEDS, hostile_text, query_string, url_quote
from tests.fuzz.web import assert_answered, client_for

FUZZ_SETTINGS = settings(
    derandomize=True,
    deadline=None,
    max_examples=4,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
HTMX = {"HTTP_HX_REQUEST": "true"}
TEXT_SEEDS = WEB_SEEDS

# Every GET page and the query parameters its view reads ({pk}: the fuzz execution).
PAGES: dict[str, list[str]] = {
    "/executions/": ["status", "function", "name", "q", "since", "from", "to", "after", "before"],
    "/executions/start/": ["function", "from"],
    "/executions/{pk}/": ["from", "rows"],
    "/executions/{pk}/section/live/": ["from", "rows"],
    "/executions/{pk}/timeline.json": ["from", "rows"],
    "/executions/{pk}/history/": ["after", "group"],
    "/executions/{pk}/history.json": [],
    "/callbacks/": [],
    "/functions/": [],
    "/functions/fuzz-target/": [],
    "/audit/": ["before"],
    "/lab/": [],
    "/lab/compare/": [],
    "/lab/diff/": ["a", "b"],
    "/lab/dlq/": [],
    **{f"/lab/demos/{demo.slug}/": ["section"] for demo in DEMOS},
}
# URL patterns with a text segment ({} is the fuzzed value).
TEXT_SEGMENTS = [
    "/executions/{pk}/ops/{}/",
    "/executions/{pk}/section/{}/",
    "/functions/{}/",
    "/lab/demos/{}/",
    "/executions/{}/",
    "/lab/comparisons/{}/",
    "/lab/dlq/{}/",
]


@pytest.fixture(scope="module")
def clients(fuzz_target: dict[str, Any]) -> dict[str, Any]:
    return {"staff": client_for(make_user(staff=True)), "viewer": client_for(make_user())}


def get(client: Any, path: str, params: dict[str, str], htmx: bool) -> Any:
    url = f"{path}?{query_string(params)}" if params else path
    return assert_rejection_stores_nothing(
        lambda: assert_answered(client.get(url, **(HTMX if htmx else {})), url), lambda _: True, url
    )


@pytest.mark.parametrize("page", sorted(PAGES))
def test_every_query_parameter_takes_every_seed(clients: dict[str, Any], fuzz_target: dict[str, Any], page: str):
    path = page.format(pk=fuzz_target["pk"])
    for param in PAGES[page]:
        for seed in TEXT_SEEDS:
            get(clients["staff"], path, {param: seed}, htmx=False)
    get(clients["viewer"], path, dict.fromkeys(PAGES[page], "\x00"), htmx=True)


@pytest.mark.parametrize("pattern", TEXT_SEGMENTS)
def test_every_text_url_segment_takes_every_seed(
    clients: dict[str, Any], fuzz_target: dict[str, Any], pattern: str
) -> None:
    for seed in [*TEXT_SEEDS, "99999999999999999999", "0"]:
        if seed:
            get(clients["staff"], pattern.format(url_quote(seed), pk=fuzz_target["pk"]), {}, htmx=False)


@pytest.mark.parametrize("page", sorted(PAGES))
@FUZZ_SETTINGS
@given(data=st.data())
def test_pages_answer_any_query(clients: dict[str, Any], fuzz_target: dict[str, Any], page: str, data: Any) -> None:
    names = PAGES[page] or ["unused"]
    params = data.draw(st.dictionaries(st.sampled_from(names), hostile_text, max_size=len(names)))
    user, htmx = data.draw(st.sampled_from(["staff", "viewer"])), data.draw(st.booleans())
    get(clients[user], page.format(pk=fuzz_target["pk"]), params, htmx)


def test_raw_percent_garbage_in_the_query_string(clients: dict[str, Any], fuzz_target: dict[str, Any]) -> None:
    """Bytes no encoder would make: invalid UTF-8, a lone %, an encoded surrogate."""
    for raw in ["q=%ff%fe", "q=%", "q=%zz", "from=%ED%A0%80", "rows=%C2%B2", "a=%00&b=%00", "%00=%00"]:
        for page in ("/executions/", "/lab/diff/", f"/executions/{fuzz_target['pk']}/"):
            response = clients["staff"].get(f"{page}?{raw}")
            assert_answered(response, f"{page}?{raw}")
