"""Who may see and do what: login everywhere, POST + CSRF + permission for every action."""

from __future__ import annotations

import pytest
from django.contrib.staticfiles.storage import staticfiles_storage
from django.test import Client
from django.urls import reverse

from executions.models import AuditEntry
from tests.dashboard.seed import seed_execution
from tests.dashboard.support import PASSWORD, make_user

READ_PAGES = [
    ("executions:home", {}),
    ("executions:list", {}),
    ("executions:start", {}),
    ("executions:callbacks", {}),
    ("executions:functions", {}),
    ("executions:audit", {}),
]
EXECUTION_PAGES = ["executions:detail", "executions:timeline_data", "executions:history", "executions:history_export"]
EXECUTION_ACTIONS = [
    "executions:stop",
    "executions:pause",
    "executions:resume",
    "executions:delete",
    "executions:kill",
    "executions:arm_fault",
    "executions:rerun",
]


@pytest.fixture
def seeded(unique: str):
    return seed_execution(function=f"acl-{unique}", operations=3)


@pytest.mark.parametrize(("name", "kwargs"), READ_PAGES)
def test_pages_redirect_anonymous_users_to_login(name: str, kwargs: dict) -> None:
    response = Client().get(reverse(name, kwargs=kwargs))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_execution_pages_and_actions_require_login(seeded) -> None:
    client = Client()
    for name in EXECUTION_PAGES:
        assert client.get(reverse(name, args=[seeded.pk]))["Location"].startswith("/accounts/login/")
    for name in EXECUTION_ACTIONS:
        assert client.post(reverse(name, args=[seeded.pk]))["Location"].startswith("/accounts/login/")
    assert client.get(reverse("executions:function", args=["hello-steps"]))["Location"].startswith("/accounts/login/")


def test_login_page_is_styled_and_logs_in() -> None:
    user = make_user()
    client = Client()
    page = client.get(reverse("login"))
    # The stylesheet under its collected name (hashed once collectstatic has run).
    assert staticfiles_storage.url("css/app.css").encode() in page.content and b"Durable Lab" in page.content
    response = client.post(reverse("login"), {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("executions:list")).status_code == 200


def test_viewers_can_read_but_not_act(viewer_client: Client, seeded) -> None:
    assert viewer_client.get(reverse("executions:detail", args=[seeded.pk])).status_code == 200
    before = AuditEntry.objects.count()
    for name in EXECUTION_ACTIONS:
        response = viewer_client.post(reverse(name, args=[seeded.pk]))
        assert response.status_code == 403, name
        assert b"Only operators" in response.content
    response = viewer_client.post(
        reverse("executions:start"), {"function": "hello-steps", "payload": "{}", "invocation_type": "Event"}
    )
    assert response.status_code == 403
    assert AuditEntry.objects.count() == before


def test_viewers_do_not_see_the_audit_trail(viewer_client: Client) -> None:
    assert viewer_client.get(reverse("executions:audit")).status_code == 403


def test_users_with_the_custom_permission_may_operate(seeded) -> None:
    client = Client()
    client.force_login(make_user(operate=True))
    response = client.post(reverse("executions:stop", args=[seeded.pk]))
    assert response.status_code == 302  # allowed; the engine refuses (already SUCCEEDED) and says so
    entry = AuditEntry.objects.filter(execution_pk=seeded.pk, action="execution.stop").get()
    assert entry.ok is False and "SUCCEEDED" in entry.detail["error"]


def test_actions_are_post_only(op_client: Client, seeded) -> None:
    for name in EXECUTION_ACTIONS:
        assert op_client.get(reverse(name, args=[seeded.pk])).status_code == 405


def test_actions_need_a_csrf_token(operator, seeded) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    for name in EXECUTION_ACTIONS:
        assert client.post(reverse(name, args=[seeded.pk])).status_code == 403, name
    assert client.post(reverse("executions:callback_action", args=[1, "approve"])).status_code == 403


def test_unknown_ids_are_404(op_client: Client) -> None:
    assert op_client.get(reverse("executions:detail", args=[987654321])).status_code == 404
    assert op_client.get(reverse("executions:timeline_data", args=[987654321])).status_code == 404
    assert op_client.get(reverse("executions:function", args=["no-such-function"])).status_code == 404
    assert op_client.post(reverse("executions:callback_action", args=[987654321, "approve"])).status_code == 404
