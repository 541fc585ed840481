"""The stack under load and abuse: login throttling, overload answers, a burst of starts and pollers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import connection
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.urls import reverse
from psycopg_pool import PoolTimeout

from engine.contrib.django.models import Execution
from tests.broker import queued_messages
from tests.browser.fixtures import _free_port
from tests.conftest import wait_until
from tests.dashboard.support import PASSWORD, _real_database, make_user  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parent.parent
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED"}


def _login(client: Client, username: str, password: str) -> Any:
    return client.post(reverse("login"), {"username": username, "password": password})


def test_five_wrong_passwords_lock_out_even_the_right_one() -> None:
    user = make_user()
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = _login(client, user.username, "wrong password")
        assert response.status_code == 200
        assert "password didn't match" in response.content.decode()
    locked = _login(client, user.username, "wrong password")
    assert locked.status_code == 429
    right = _login(client, user.username, PASSWORD)
    assert right.status_code == 429
    page = right.content.decode()
    assert "Too many failed logins" in page and "locked for 15 minutes" in page
    assert "_auth_user_id" not in client.session


def test_lockout_is_per_username_so_others_still_log_in() -> None:
    victim, other = make_user(), make_user()
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(client, victim.username, "wrong password")
    assert _login(client, other.username, PASSWORD).status_code == 302


@pytest.mark.parametrize("password", ["admin", "password", "12345678", "short1"])
def test_password_validators_reject_weak_passwords(password: str) -> None:
    with pytest.raises(ValidationError):
        validate_password(password, get_user_model()(username="admin"))


def test_exhausted_connection_pool_answers_503_with_retry_after() -> None:
    """Every connection of this process's Django pool is taken: a page waits, then gets a 503."""
    client = Client(raise_request_exception=False)
    client.force_login(make_user(staff=True))
    connection.close()  # this thread's connection goes back to the pool, to be taken below
    pool = connection.pool
    held, timeout = [], pool.timeout
    try:
        while True:
            try:
                held.append(pool.getconn(timeout=0.5))
            except PoolTimeout:
                break
        pool.timeout = 0.5
        response = client.get(reverse("executions:list"))
    finally:
        pool.timeout = timeout
        for conn in held:
            pool.putconn(conn)
    # The loop ends only when the pool has nothing left to give; other threads of this test
    # process (a live server, say) may hold some of its connections themselves.
    assert 0 < len(held) <= pool.max_size
    assert response.status_code == 503
    assert response["Retry-After"].isdigit()
    page = response.content.decode()
    assert "try again" in page and "Traceback" not in page


def test_unreachable_broker_answers_503_saying_the_request_may_be_recorded() -> None:
    from kombu.exceptions import OperationalError as BrokerUnreachable

    from durable_site.middleware import DatabaseOverloadMiddleware

    request = RequestFactory().post("/executions/start/")
    response = DatabaseOverloadMiddleware(lambda r: HttpResponse()).process_exception(
        request, BrokerUnreachable("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
    )
    assert response is not None and response.status_code == 503
    assert response["Retry-After"].isdigit()
    assert "may already be recorded" in response.content.decode()


def test_other_errors_are_left_to_the_500_page() -> None:
    from durable_site.middleware import DatabaseOverloadMiddleware

    request = RequestFactory().get("/")
    assert DatabaseOverloadMiddleware(lambda r: HttpResponse()).process_exception(request, ValueError("x")) is None


def test_unknown_page_is_a_friendly_404_without_debug_details() -> None:
    client = Client()
    client.force_login(make_user())
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert "There is nothing here" in response.content.decode()
    assert "URLconf" not in response.content.decode()


# --- the burst ----------------------------------------------------------------------------


def _session_cookie(user: Any) -> str:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any) -> None:
        return None  # a 302 is the answer to look at


_opener = urllib.request.build_opener(_NoRedirect)


def _request(url: str, cookie: str, data: dict[str, str] | None = None) -> tuple[int, str]:
    """Return the status and ``Location`` (or body) of one request, redirects not followed."""
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers={"Cookie": cookie})
    try:
        with _opener.open(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Location", "")


def _answers(url: str) -> bool:
    try:
        return _request(url, "")[0] == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def make_run_web(stack: Any) -> Iterator[str]:
    """The web server exactly as `make run` starts it (Gunicorn, DEBUG off), on a free port."""
    from durable_site.management.commands.durable_up import web_command

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_DEBUG"}
    proc = subprocess.Popen(web_command(port), cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)}, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: proc.poll() is not None or _answers(f"{url}/accounts/login/"), 60, message="web server")
        assert proc.poll() is None, "the web server exited"
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _start_form_token(web_server: str, cookie: str) -> tuple[str, str]:
    """Return the cookie and form field that let this session post the Start form."""
    with urllib.request.urlopen(
        urllib.request.Request(f"{web_server}/executions/start/", headers={"Cookie": cookie})
    ) as r:
        page = r.read().decode()
        csrf_cookie = r.headers["Set-Cookie"].split(";")[0]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token is not None
    return f"{cookie}; {csrf_cookie}", token.group(1)


def _queued_messages() -> int:
    return queued_messages("durable")


@pytest.mark.slow
def test_burst_of_starts_and_pollers_has_no_errors_and_leaves_no_stray_messages(
    lam: Any, make_run_web: str, unique: str
) -> None:
    web_server = make_run_web
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("counts the broker's queue with Redis (CELERY_BROKER_URL=redis://...)")
    cookie, csrf_token = _start_form_token(web_server, _session_cookie(make_user(staff=True)))
    seed = lam.invoke(FunctionName="hello-steps", InvocationType="Event", Payload=b'{"wait_seconds": 1}')
    seed_pk = Execution.objects.get(arn=seed["DurableExecutionArn"]).pk
    names = [f"burst-{unique}-{i}" for i in range(50)]
    errors: list[str] = []
    statuses: Counter[int] = Counter()
    starting = threading.Event()
    done = threading.Event()

    def start(i: int) -> None:
        """Half the starts post the dashboard's Start form, half call the engine's client."""
        starting.wait()
        payload = json.dumps({"name": f"{unique}-{i}", "wait_seconds": 1})
        try:
            if i % 2:
                form = {"csrfmiddlewaretoken": csrf_token, "function": "hello-steps", "payload": payload}
                form.update(name=names[i], invocation_type="Event", time_scale="1")
                status, location = _request(f"{web_server}/executions/start/", cookie, form)
                assert status == 302 and location.startswith("/executions/"), (status, location[-2000:])
            else:
                response = lam.invoke(
                    FunctionName="hello-steps", InvocationType="Event", Payload=payload, DurableExecutionName=names[i]
                )
                assert response["StatusCode"] == 202, response
        except Exception as error:
            errors.append(f"start {i}: {error!r}")

    def poll(i: int) -> None:
        starting.wait()
        url = f"{web_server}/executions/" if i % 2 else f"{web_server}/executions/{seed_pk}/timeline.json"
        while not done.is_set():
            try:
                statuses[_request(url, cookie)[0]] += 1
            except Exception as error:
                errors.append(f"poll {url}: {error!r}")

    starters = [threading.Thread(target=start, args=(i,)) for i in range(50)]
    pollers = [threading.Thread(target=poll, args=(i,)) for i in range(20)]
    for thread in starters + pollers:
        thread.start()
    starting.set()
    for thread in starters:
        thread.join(timeout=120)
    try:
        assert errors == []
        burst = Execution.objects.filter(function_name="hello-steps", name__in=names)
        assert burst.count() == 50

        def finished() -> bool:
            return burst.filter(status__in=TERMINAL).count() == 50

        wait_until(finished, timeout=180, interval=0.5, message="all 50 burst executions to finish")
    finally:
        done.set()
        for thread in pollers:
            thread.join(timeout=120)
    assert errors == []
    assert set(statuses) == {200}, statuses
    assert sum(statuses.values()) >= 20
    assert set(burst.values_list("status", flat=True)) == {"SUCCEEDED"}
    waiting = Execution.objects.filter(needs_invoke=True).count()
    assert _queued_messages() <= waiting
