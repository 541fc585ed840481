"""The access-keys page through Django's test client: create shows the secret once, revoke by POST."""

from __future__ import annotations

import re

from django.test import Client

from accesskeys.models import AccessKey
from executions.models import AuditEntry
from tests.accesskeys.conftest import make_user

SECRET = re.compile(r'id="secret-access-key">([A-Za-z0-9+/]{40})<')


def client_for(user: object) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_list_needs_login() -> None:
    response = Client().get("/account/keys/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_empty_list_invites_a_first_key() -> None:
    response = client_for(make_user("ui")).get("/account/keys/")
    assert response.status_code == 200
    assert b"No access keys yet" in response.content and b"Create access key" in response.content


def test_create_shows_the_secret_once() -> None:
    user = make_user("ui")
    client = client_for(user)
    response = client.post("/account/keys/create/")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    secret = SECRET.search(response.content.decode()).group(1)
    key = AccessKey.objects.get(user=user)
    assert key.secret() == secret
    page = response.content.decode()
    assert f"export AWS_SECRET_ACCESS_KEY={secret}" in page and "aws configure set aws_access_key_id" in page
    assert "cannot be shown again" in page
    listing = client.get("/account/keys/").content.decode()
    assert key.access_key_id in listing and secret not in listing and "Active" in listing
    assert AuditEntry.objects.filter(action="access_key.create", target=key.access_key_id, user=user).exists()


def test_create_needs_post() -> None:
    user = make_user("ui")
    assert client_for(user).get("/account/keys/create/").status_code == 405
    assert not AccessKey.objects.filter(user=user).exists()


def test_revoke_by_post() -> None:
    user = make_user("ui")
    client = client_for(user)
    client.post("/account/keys/create/")
    key = AccessKey.objects.get(user=user)
    assert client.get(f"/account/keys/{key.access_key_id}/revoke/").status_code == 405
    response = client.post(f"/account/keys/{key.access_key_id}/revoke/", follow=True)
    assert response.status_code == 200 and b"revoked" in response.content
    key.refresh_from_db()
    assert key.revoked_at is not None and b"Revoked" in response.content
    assert AuditEntry.objects.filter(action="access_key.revoke", target=key.access_key_id, user=user).exists()


def test_cannot_see_or_revoke_another_users_key() -> None:
    owner, other = make_user("ui"), make_user("ui")
    client_for(owner).post("/account/keys/create/")
    key = AccessKey.objects.get(user=owner)
    other_client = client_for(other)
    assert key.access_key_id not in other_client.get("/account/keys/").content.decode()
    response = other_client.post(f"/account/keys/{key.access_key_id}/revoke/", follow=True)
    assert b"nothing was revoked" in response.content
    key.refresh_from_db()
    assert key.revoked_at is None


def test_revoke_of_a_malformed_id_is_a_message_not_an_error() -> None:
    client = client_for(make_user("ui"))
    for bad in ("%00", "%ED%A0%80", "x" * 300, "akia0000000000000000"):
        response = client.post(f"/account/keys/{bad}/revoke/", follow=True)
        assert response.status_code == 200 and b"nothing was revoked" in response.content


def test_staff_see_all_keys_in_admin_with_the_secret_read_only() -> None:
    staff = make_user("staff", staff=True)
    staff.is_superuser = True
    staff.save()
    owner = make_user("ui")
    client_for(owner).post("/account/keys/create/")
    key = AccessKey.objects.get(user=owner)
    client = client_for(staff)
    assert key.access_key_id in client.get("/admin/accesskeys/accesskey/").content.decode()
    change = client.get(f"/admin/accesskeys/accesskey/{key.pk}/change/")
    assert change.status_code == 200
    assert key.secret() not in change.content.decode()  # only the ciphertext is shown
    assert b'name="secret_encrypted"' not in change.content  # not an input: read-only
    assert client.post(f"/admin/accesskeys/accesskey/{key.pk}/change/", {}).status_code == 403
