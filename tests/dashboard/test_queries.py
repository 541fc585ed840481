"""Every page answers with a fixed number of SQL queries, whatever the size of what it shows."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from engine.contrib.django.models import Operation
from executions import selectors
from tests.dashboard.seed import bulk_executions, delete_function_executions, seed_execution

BIG = 1200


@pytest.fixture
def small_and_big(unique: str):
    small = seed_execution(function=f"q-{unique}", operations=5)
    big = seed_execution(function=f"q-{unique}", operations=BIG, invocations=20)
    return small, big


def measure(count_queries, client: Client, url: str, **extra) -> tuple[int, int]:
    client.get(url, **extra)  # warm caches (session, user, permissions) so both runs pay the same
    with count_queries() as counted:
        response = client.get(url, **extra)
    assert response.status_code == 200
    return counted.django, counted.engine


def test_execution_page_query_count_does_not_grow_with_operations(
    op_client: Client, count_queries, small_and_big
) -> None:
    small, big = small_and_big
    small_counts = measure(count_queries, op_client, reverse("executions:detail", args=[small.pk]))
    big_counts = measure(count_queries, op_client, reverse("executions:detail", args=[big.pk]))
    assert big_counts == small_counts
    assert sum(big_counts) <= 16, big_counts


def test_timeline_json_query_count_does_not_grow_with_operations(
    op_client: Client, count_queries, small_and_big
) -> None:
    small, big = small_and_big
    small_counts = measure(count_queries, op_client, reverse("executions:timeline_data", args=[small.pk]))
    big_counts = measure(count_queries, op_client, reverse("executions:timeline_data", args=[big.pk]) + "?rows=all")
    assert big_counts == small_counts
    assert sum(big_counts) <= 10, big_counts  # benchmarks.md B5 target


def test_live_sections_and_history_query_counts_are_bounded(op_client: Client, count_queries, small_and_big) -> None:
    small, big = small_and_big
    for name, args in (("executions:section", ["live"]), ("executions:history", []), ("executions:history_export", [])):
        counts = [
            measure(count_queries, op_client, reverse(name, args=[e.pk, *args]), HTTP_HX_REQUEST="true")
            for e in (small, big)
        ]
        assert counts[0] == counts[1], name


def test_operation_panel_query_count_does_not_grow_with_operations(
    op_client: Client, count_queries, small_and_big
) -> None:
    counts = []
    for execution in small_and_big:
        op_id = Operation.objects.filter(execution=execution, name="step-3").values_list("op_id", flat=True).get()
        counts.append(measure(count_queries, op_client, reverse("executions:operation", args=[execution.pk, op_id])))
    assert counts[0] == counts[1] and sum(counts[1]) <= 14, counts


def test_execution_list_query_count_is_the_same_for_5_and_50_rows(
    op_client: Client, count_queries, unique: str
) -> None:
    few, lots = f"few-{unique}", f"lots-{unique}"
    for function, count in ((few, 5), (lots, 50)):
        for _ in range(count):
            seed_execution(function=function, operations=2)
    few_counts = measure(count_queries, op_client, reverse("executions:list") + f"?function={few}")
    lots_counts = measure(count_queries, op_client, reverse("executions:list") + f"?function={lots}")
    assert few_counts == lots_counts
    assert sum(lots_counts) <= 10, lots_counts


def test_callbacks_functions_and_audit_pages_are_bounded(op_client: Client, count_queries) -> None:
    for name in ("executions:callbacks", "executions:functions", "executions:audit"):
        django_queries, _ = measure(count_queries, op_client, reverse(name))
        assert django_queries <= 8, name


@pytest.mark.slow
def test_keyset_paging_stays_fast_at_100k_executions(op_client: Client, unique: str) -> None:
    function = f"scale-{unique}"
    bulk_executions(function=function, count=100_000)
    try:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE durable_execution")
        filters = selectors.ExecutionFilters(function=function)
        token = selectors.execution_list(filters=filters).older
        for _ in range(40):  # 41 pages deep: keyset paging costs the same at any depth
            token = selectors.execution_list(filters=filters, after=selectors.Cursor.decode(token)).older
        response = op_client.get(reverse("executions:list"), {"function": function, "after": token})
        assert response.context["page"].rows[0].name == "bulk-2051"
        # Speed is measured in the benchmarks; here, the plan shows why depth costs nothing: the
        # unfiltered list at a deep cursor walks the (started_at, id) index instead of sorting.
        assert op_client.get(reverse("executions:list"), {"after": token}).status_code == 200
        assert "durable_exec_started" in _plan(token)
    finally:
        delete_function_executions(function)


def _plan(token: str) -> str:
    """EXPLAIN of the unfiltered list query at a deep cursor: it must walk the (started_at, id) index."""
    qs = selectors._older_than(selectors.Execution.objects.all(), selectors.Cursor.decode(token))
    sql, params = qs.order_by("-started_at", "-id")[:51].query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())
