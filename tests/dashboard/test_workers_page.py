"""The workers & queue page (issue 19 point 4): every number on it is the engine's record.

The state is written into the engine's tables inside a transaction on Django's connection, the
page is rendered on that same connection by the test client, and the transaction is rolled back:
the session's real worker and scheduler never see the made-up rows, and the numbers cannot move
between the render and the checks. Each number is compared with a direct SQL count written here,
independently of ``executions/workers.py``."""

from __future__ import annotations

import html
import os
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test import Client
from kombu import Connection, Exchange, Producer, Queue

from engine import workers as engine_workers
from executions import workers
from tests.broker import queued_messages
from tests.conftest import wait_until
from tests.dashboard import shared_workers
from tests.dashboard.shared_workers import Scene

LEASE = f"make_interval(secs => {engine_workers.lease_seconds()})"
# The rows the page shows: a process that stopped, or was found lost, more than an hour ago is old news.
SHOWN = "(coalesce(stopped_at, lost_at, 'infinity') >= now() - interval '1 hour')"


@pytest.fixture
def rolled_back() -> Iterator[Any]:
    """A cursor on Django's connection inside a transaction that is always rolled back."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            yield cursor
        transaction.set_rollback(True)


@pytest.fixture
def scene(rolled_back: Any) -> Scene:
    return shared_workers.build(rolled_back)


def one(cursor: Any, sql: str, params: list[Any] | None = None) -> Any:
    cursor.execute(sql, params or [])
    return cursor.fetchone()[0]


def page_of(client: Client) -> str:
    response = client.get("/workers/")
    assert response.status_code == 200
    return response.content.decode()


def number(fragment: str, key: str) -> str:
    match = re.search(rf'data-n="{key}"[^>]*>([^<]*)<', fragment)
    assert match, f"no {key} in {fragment[:400]}"
    return html.unescape(match.group(1)).replace(",", "").strip()


def host_card(page: str, host: str) -> str:
    start = page.index(f'data-host="{host}"')
    return page[start : page.index("</section>", start)]


def process_row(card: str, pid: int) -> str:
    start = card.index(f'data-pid="{pid}"')
    return card[start : card.index("</tr>", start)]


# --- direct SQL: the engine's record, asked without the page's queries ----------------------


def live_hosts(cursor: Any) -> int:
    sql = f"SELECT count(DISTINCT host_id) FROM durable_worker WHERE stopped_at IS NULL AND heartbeat_at >= now() - {LEASE}"
    return int(one(cursor, sql))


def lost_hosts(cursor: Any) -> int:
    sql = f"""SELECT count(*) FROM (SELECT host_id FROM durable_worker WHERE {SHOWN} GROUP BY host_id
        HAVING NOT bool_or(stopped_at IS NULL AND heartbeat_at >= now() - {LEASE})
           AND bool_or(stopped_at IS NULL OR lost_at IS NOT NULL)) lost"""
    return int(one(cursor, sql))


def host_state(cursor: Any, host: str) -> str:
    sql = f"""SELECT CASE WHEN bool_or(stopped_at IS NULL AND heartbeat_at >= now() - {LEASE}) THEN 'live'
        WHEN bool_or(stopped_at IS NULL OR lost_at IS NOT NULL) THEN 'lost' ELSE 'stopped' END
        FROM durable_worker WHERE host_id = %s"""
    return str(one(cursor, sql, [host]))


def running(cursor: Any, host: str | None = None) -> int:
    where = "AND worker = %s" if host is not None else ""
    return int(
        one(cursor, f"SELECT count(*) FROM durable_invocation WHERE ended_at IS NULL {where}", [host] if host else [])
    )


def live_processes(cursor: Any, host: str) -> int:
    sql = f"SELECT count(*) FROM durable_worker WHERE host_id = %s AND stopped_at IS NULL AND heartbeat_at >= now() - {LEASE}"
    return int(one(cursor, sql, [host]))


def lease_age(cursor: Any, host: str) -> float:
    sql = "SELECT extract(epoch FROM now() - max(heartbeat_at)) FROM durable_worker WHERE host_id = %s AND stopped_at IS NULL"
    return float(one(cursor, sql, [host]))


def run_by(cursor: Any, host: str, pid: int) -> int:
    sql = """SELECT count(*) FROM durable_invocation i JOIN durable_worker w ON w.host_id = i.worker AND w.pid = i.pid
        WHERE w.host_id = %s AND w.pid = %s AND i.started_at >= w.started_at
          AND i.started_at <= coalesce(w.stopped_at, 'infinity')"""
    return int(one(cursor, sql, [host, pid]))


def busy_with(cursor: Any, host: str, pid: int) -> int | None:
    sql = "SELECT execution_id FROM durable_invocation WHERE worker = %s AND pid = %s AND ended_at IS NULL"
    return one(cursor, sql, [host, pid]) if one(cursor, sql.replace("execution_id", "count(*)"), [host, pid]) else None


WAITING = "status = 'RUNNING' AND needs_invoke AND NOT running AND dispatched_at IS NOT NULL AND pause_state IS NULL"


def waiting(cursor: Any) -> tuple[int, float | None]:
    cursor.execute(
        f"SELECT count(*), extract(epoch FROM now() - min(dispatched_at)) FROM durable_execution WHERE {WAITING}"
    )
    count, oldest = cursor.fetchone()
    return int(count), (float(oldest) if oldest is not None else None)


# --- the page -------------------------------------------------------------------------------


def test_every_number_on_the_page_is_the_engines_record(viewer_client: Client, scene: Scene, rolled_back: Any) -> None:
    cursor = rolled_back
    page = page_of(viewer_client)
    assert int(number(page, "hosts-live")) == live_hosts(cursor) >= 1
    assert int(number(page, "hosts-lost")) == lost_hosts(cursor) >= 1
    assert int(number(page, "running")) == running(cursor) >= 3
    count, oldest = waiting(cursor)
    assert int(number(page, "waiting")) == count >= 2
    oldest_shown = re.search(r'data-n="oldest-wait" data-seconds="([\d.]+)"', page)
    assert oldest_shown and oldest is not None and float(oldest_shown.group(1)) == pytest.approx(oldest, abs=0.001)
    for host in (scene.live, scene.lost, scene.stopped):
        card = host_card(page, host)
        assert f'data-state="{host_state(cursor, host)}"' in card
        assert int(number(card, "live-processes")) == live_processes(cursor, host)
        assert int(number(card, "host-running")) == running(cursor, host)
        age = re.search(r'data-n="lease-age" data-seconds="([\d.]+)"', card)
        if host == scene.stopped:
            assert age is None  # every process said goodbye: no lease to age
        else:
            assert age and float(age.group(1)) == pytest.approx(lease_age(cursor, host), abs=0.001)
    for pid in (101, 102, 103):
        row = process_row(host_card(page, scene.live), pid)
        assert int(number(row, "run")) == run_by(cursor, scene.live, pid)


def test_the_known_state_reads_as_built(viewer_client: Client, scene: Scene, rolled_back: Any) -> None:
    """The same page, against what the scene is known to hold: the checks above cannot all pass
    on a page that shows nothing."""
    page = page_of(viewer_client)
    live = host_card(page, scene.live)
    states = {pid: re.search(r'data-state="(\w+)"', process_row(live, pid)).group(1) for pid in (100, 101, 102, 103)}
    assert states == {100: "live", 101: "busy", 102: "idle", 103: "stopped"}
    assert [number(process_row(live, pid), "run") for pid in (101, 102, 103)] == ["2", "3", "1"]
    assert f'href="/executions/{scene.executions["busy"]}/"' in process_row(live, 101)
    assert busy_with(rolled_back, scene.live, 101) == scene.executions["busy"]
    lost = host_card(page, scene.lost)
    assert 'data-state="lost"' in lost and "Found lost by another host at" in lost and "lease expired at" in lost
    assert 'data-state="stopped"' in host_card(page, scene.stopped)
    assert f'data-host="{scene.old}"' not in page  # stopped hours ago: not shown
    assert f'data-host="{scene.old_lost}"' not in page  # found lost hours ago: not shown
    ghost = host_card(page, scene.ghost)
    assert 'data-state="unregistered"' in ghost and number(ghost, "host-running") == "1"


def test_the_waiting_table_lists_executions_waiting_for_a_worker_oldest_first(
    viewer_client: Client, scene: Scene
) -> None:
    page = page_of(viewer_client)
    table = page[page.index('id="waiting"') :]
    long_, short = scene.executions["waits-long"], scene.executions["waits-short"]
    assert table.index(f'data-execution="{long_}"') < table.index(f'data-execution="{short}"')
    row = table[table.index(f'data-execution="{short}"') :]
    assert "wait_elapsed" in row[: row.index("</tr>")]
    for not_waiting in ("paused", "busy", "history"):
        assert f'data-execution="{scene.executions[not_waiting]}"' not in table


def test_lost_host_row_states_that_no_host_recorded_it_yet(
    viewer_client: Client, scene: Scene, rolled_back: Any
) -> None:
    rolled_back.execute("UPDATE durable_worker SET lost_at = NULL WHERE host_id = %s", [scene.lost])
    card = host_card(page_of(viewer_client), scene.lost)
    assert 'data-state="lost"' in card and "No other host has recorded its invocations lost yet." in card


def test_a_host_whose_lease_lapses_turns_lost(viewer_client: Client, scene: Scene, rolled_back: Any) -> None:
    """The state follows the heartbeat: the same host, its beats made older than the lease."""
    assert 'data-state="live"' in host_card(page_of(viewer_client), scene.live)
    rolled_back.execute(
        f"UPDATE durable_worker SET heartbeat_at = now() - {LEASE} - interval '1 second' WHERE host_id = %s",
        [scene.live],
    )
    card = host_card(page_of(viewer_client), scene.live)
    assert 'data-state="lost"' in card and host_state(rolled_back, scene.live) == "lost"
    assert 'data-state="busy"' not in card  # a process of a lost host is lost, not busy


def test_empty_state_explains_how_to_start_a_worker(viewer_client: Client, rolled_back: Any) -> None:
    rolled_back.execute("DELETE FROM durable_worker")
    page = page_of(viewer_client)
    assert (
        "No worker has registered yet" in page
        and "<code>make run</code>" in page
        and "<code>make worker</code>" in page
    )
    assert number(page, "hosts-live") == "0"


def test_registered_hosts_none_live_warns_that_nothing_serves_the_queue(
    viewer_client: Client, scene: Scene, rolled_back: Any
) -> None:
    assert 'id="no-live-worker"' not in page_of(viewer_client)
    rolled_back.execute("UPDATE durable_worker SET stopped_at = now() WHERE stopped_at IS NULL")
    page = page_of(viewer_client)
    assert 'id="no-live-worker"' in page and "No worker has registered yet" not in page
    assert number(page, "hosts-live") == "0" == str(live_hosts(rolled_back))


def test_the_empty_state_is_gone_once_a_worker_registers(viewer_client: Client, scene: Scene) -> None:
    assert "No worker has registered yet" not in page_of(viewer_client)


def test_the_page_asks_a_fixed_number_of_queries(viewer_client: Client, rolled_back: Any, count_queries: Any) -> None:
    """However many hosts and processes: one query per question, not one per row."""
    shared_workers.build(rolled_back)
    with count_queries() as few:
        page_of(viewer_client)
    for _ in range(3):
        shared_workers.build(rolled_back)
    with count_queries() as many:
        page_of(viewer_client)
    assert many.django == few.django, many.sql


# --- the broker -----------------------------------------------------------------------------


@pytest.fixture
def private_queue() -> Iterator[str]:
    """A queue of its own on the session's broker: no worker consumes it."""
    name = f"workers-test-{uuid.uuid4().hex[:8]}"
    yield name
    with Connection(settings.CELERY_BROKER_URL) as conn:
        Queue(name, Exchange(name), routing_key=name)(conn.default_channel).delete()


def publish(queue: str, n: int) -> None:
    publish_to(settings.CELERY_BROKER_URL, queue, n)


def test_backlog_is_the_brokers_count_of_the_queue(private_queue: str) -> None:
    assert workers.queue_backlog(queue=private_queue).messages == 0 == queued_messages(private_queue)
    publish(private_queue, 7)
    backlog = workers.queue_backlog(queue=private_queue)
    assert backlog.messages == queued_messages(private_queue) == 7 and not backlog.error


def test_the_page_shows_the_backlog_of_its_queue(
    viewer_client: Client, private_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workers, "QUEUE", private_queue)
    publish(private_queue, 4)
    page = page_of(viewer_client)
    assert int(number(page, "backlog")) == queued_messages(private_queue) == 4
    assert f"queue <b>{private_queue}</b>" in page


def test_an_unreachable_broker_is_said_on_the_page(viewer_client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """A broker nobody listens for (a closed port): the page renders PostgreSQL's record and says
    the backlog is unknown, instead of failing or hanging."""
    app = workers._celery_app()
    monkeypatch.delenv("CELERY_BROKER_READ_URL", raising=False)
    monkeypatch.setattr(app.conf, "broker_read_url", "redis://127.0.0.1:9/0")
    page = page_of(viewer_client)
    assert 'id="broker-error"' in page and "could not be reached" in page and number(page, "backlog") == "?"
    assert "127.0.0.1:9" in page


AMQP = "amqp://guest:guest@127.0.0.1:5672//"


def publish_to(url: str, queue: str, n: int, options: dict[str, Any] | None = None) -> None:
    with Connection(url, transport_options=options or {}) as conn:
        target = Queue(queue, Exchange(queue), routing_key=queue)
        producer = Producer(conn.default_channel)
        for i in range(n):
            producer.publish({"n": i}, exchange=target.exchange, routing_key=queue, declare=[target])


def test_backlog_on_amqp_is_rabbitmqs_count(private_queue: str) -> None:
    """RabbitMQ (when this machine runs one): a passive declare's message_count."""
    if workers.queue_backlog(queue=private_queue, broker_url=AMQP).error:
        pytest.skip("no RabbitMQ at 127.0.0.1:5672")
    try:
        publish_to(AMQP, private_queue, 5)
        # RabbitMQ counts a publish (sent without confirms) a moment after the client returns.
        backlog = wait_until(
            lambda: (found := workers.queue_backlog(queue=private_queue, broker_url=AMQP)).messages == 5 and found,
            timeout=10,
            message="RabbitMQ to count the 5 messages",
        )
        assert backlog.messages == 5 and not backlog.error
    finally:
        with Connection(AMQP) as conn:
            Queue(private_queue, Exchange(private_queue), routing_key=private_queue)(conn.default_channel).delete()


def test_backlog_on_the_filesystem_transport_counts_its_message_files(tmp_path: Any, private_queue: str) -> None:
    folder = tmp_path / "queue"
    folder.mkdir()
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder), "control_folder": str(tmp_path)}
    publish_to("filesystem://", private_queue, 3, options)
    backlog = workers.queue_backlog(queue=private_queue, broker_url="filesystem://", transport_options=options)
    files = [name for name in os.listdir(folder) if name.endswith(f".{private_queue}.msg")]
    assert backlog.messages == len(files) == 3 and not backlog.error


def test_an_unreachable_amqp_broker_is_an_error_not_a_number() -> None:
    backlog = workers.queue_backlog(broker_url="amqp://nobody@127.0.0.1:9//")
    assert backlog.messages is None and "OperationalError" in backlog.error


# --- access and navigation ------------------------------------------------------------------


def test_the_page_needs_a_login() -> None:
    response = Client().get("/workers/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_nav_links_the_page_and_marks_it_current(viewer_client: Client) -> None:
    page = page_of(viewer_client)
    assert re.search(r'<a href="/workers/" aria-current="page">Workers</a>', page)
    assert '<a href="/workers/" >Workers</a>' in viewer_client.get("/executions/").content.decode()


def test_htmx_polls_get_only_the_live_part(viewer_client: Client) -> None:
    part = viewer_client.get("/workers/", headers={"HX-Request": "true"}).content.decode()
    assert part.lstrip().startswith('<div id="workers"') and "<html" not in part


# --- with the session's real worker ---------------------------------------------------------


def test_a_real_invocation_shows_its_process_busy_then_counted(
    op_client: Client, dash_functions: dict[str, str], stack: Any
) -> None:
    """End to end: the session's worker registered itself; while it runs a slow step the page
    names the process running it and links the execution, and afterwards counts the invocation."""
    payload = {"function": "dash-slow-step", "payload": '{"seconds": 3}', "invocation_type": "Event", "time_scale": "1"}
    response = op_client.post("/executions/start/", payload)
    assert response.status_code == 302, response.content[-2000:]
    pk = int(response["Location"].rstrip("/").split("/")[-1])
    link = f'href="/executions/{pk}/"'

    def busy_row() -> str | None:
        rows = re.findall(r'<tr data-pid="\d+" data-state="busy".*?</tr>', page_of(op_client), flags=re.S)
        return next((row for row in rows if link in row), None)

    row = wait_until(busy_row, timeout=30, interval=0.3, message="a busy process running the execution")
    pid = int(re.search(r'data-pid="(\d+)"', row).group(1))
    with connection.cursor() as cursor:
        cursor.execute("SELECT worker FROM durable_invocation WHERE execution_id = %s AND ended_at IS NULL", [pk])
        (host,) = cursor.fetchone()
        wait_until(
            lambda: one(cursor, "SELECT status <> 'RUNNING' FROM durable_execution WHERE id = %s", [pk]), timeout=60
        )
        card = host_card(page_of(op_client), host)
        assert int(number(process_row(card, pid), "run")) == run_by(cursor, host, pid) >= 1


def test_the_read_module_is_clean_under_mypy_strict() -> None:
    """``executions/workers.py`` is typed as strictly as the selectors (pyproject's mypy ``files``
    names the engine and selectors.py; this holds the page's reads to the same gate)."""
    from tests.test_types import run_mypy

    result = run_mypy("--strict", "executions/workers.py")
    assert result.returncode == 0, f"mypy found type errors:\n{result.stdout}{result.stderr}"
