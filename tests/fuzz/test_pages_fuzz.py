"""Fuzz every query parameter and text URL segment of every GET page: no 500, no traceback, no write."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.demos import DEMOS
from tests.dashboard.support import make_user
from tests.fuzz.conftest import assert_rejection_stores_nothing
from tests.fuzz.hostile import WEB_SEEDS, fuzz_settings, hostile_text, query_string, url_quote
from tests.fuzz.web import assert_answered, client_for

FUZZ_SETTINGS = fuzz_settings(max_examples=4)
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
    "/executions/{pk}/customer/": [],
    "/functions/": [],
    "/functions/fuzz-target/": [],
    "/audit/": ["before"],
    "/account/keys/": [],
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
    "/answer/{}/",  # a signed approval link: a bad token is a 400 page
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


# The 500s the probe of issue 21 found on GET pages, each with the answer it must now get.
ISSUE_21_PAGES = [
    ("/executions/{pk}/?from=%C2%B2&rows=%C2%B2", 200, "Operations"),
    ("/executions/start/?from=%C2%B2", 200, "Start"),
    ("/executions/?q=%00", 400, "Search contains a NUL byte."),
    ("/executions/?name=%00", 400, "Name contains a NUL byte."),
    ("/executions/?function=%00", 400, "Function contains a NUL byte."),
    ("/executions/?from=2020-01-01T00:00:00%2B23:59", 400, "offsets are at most ±14:00"),
    ("/executions/?to=0001-01-01T00:00:00%2B01:00", 400, "dates run from year 1 to 9999 in UTC"),
    ("/executions/{pk}/ops/%00/", 404, "Not found"),
    ("/functions/%00/", 404, "Not found"),
    ("/lab/diff/?a=%00&b=x", 200, "Execution A contains a NUL byte."),
    ("/audit/?before=%C2%B2", 200, "Audit"),
    ("/executions/{pk}/history/?after=%C2%B2", 200, ""),
]


@pytest.mark.parametrize(("url", "status", "message"), ISSUE_21_PAGES, ids=[u for u, _, _ in ISSUE_21_PAGES])
def test_issue_21_pages_answer_with_a_clear_page(
    clients: dict[str, Any], fuzz_target: dict[str, Any], url: str, status: int, message: str
) -> None:
    response = get(clients["staff"], url.format(pk=fuzz_target["pk"]), {}, htmx=False)
    assert response.status_code == status, response.content[-2000:]
    assert message in response.content.decode(), response.content[-2000:]
