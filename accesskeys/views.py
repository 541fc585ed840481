"""The logged-in user's own access keys: list, create (secret shown once), revoke."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accesskeys import services
from executions.services import can_operate

DEFAULT_REGION = "us-east-1"  # any region verifies; the CLI and SDKs need one to sign with


@require_GET
@login_required
def key_list(request: HttpRequest) -> HttpResponse:
    keys = services.access_key_list(user=request.user)
    return render(request, "accesskeys/list.html", {"keys": keys, "can_operate": can_operate(request.user)})


@never_cache  # the one response that holds the secret: no browser or proxy may keep it
@require_POST
@login_required
def key_create(request: HttpRequest) -> HttpResponse:
    # Shown in this POST's response and nowhere else: no redirect, so the secret is never put in
    # the session, a URL or a message.
    made = services.access_key_create(user=request.user, actor=request.user)
    context = {
        "key": made.key,
        "secret": made.secret,
        "endpoint": request.build_absolute_uri("/").rstrip("/"),
        "region": DEFAULT_REGION,
        "can_operate": can_operate(request.user),
    }
    return render(request, "accesskeys/created.html", context)


@require_POST
@login_required
def key_revoke(request: HttpRequest, access_key_id: str) -> HttpResponse:
    try:
        services.access_key_revoke(access_key_id=access_key_id, user=request.user, actor=request.user)
    except services.AccessKeyNotFound:
        messages.error(request, f"You have no access key {access_key_id[:40]}; nothing was revoked.")
    else:
        messages.success(request, f"Access key {access_key_id} revoked: requests signed with it are now refused.")
    return redirect("accesskeys:list")
