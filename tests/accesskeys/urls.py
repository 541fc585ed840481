"""Test-only routes: every AWS API path answers with who signed it (the wire app is built elsewhere)."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt

from accesskeys import sigv4
from executions.services import can_operate


@dataclass(frozen=True)
class Seen:
    username: str
    method: str
    path: str  # decoded, as Django routes it
    raw_path: str  # as the client sent it
    query: str
    body: bytes
    operates: bool  # the key acts with its user's permissions


SEEN: list[Seen] = []


@csrf_exempt
def signed_echo(request: HttpRequest, rest: str) -> HttpResponse:
    try:
        user = sigv4.authenticate(request)
    except sigv4.SignatureRejected as exc:
        return sigv4.error_response(exc)
    seen = Seen(
        user.get_username(),
        request.method or "",
        request.path,
        sigv4.raw_path(request),
        request.META.get("QUERY_STRING", ""),
        request.body,
        can_operate(user),
    )
    SEEN.append(seen)
    return JsonResponse({})


urlpatterns = [
    re_path(r"^(?P<rest>20[0-9]{2}-[0-9]{2}-[0-9]{2}/.*)$", signed_echo),
    path("", include("durable_site.urls")),
]
