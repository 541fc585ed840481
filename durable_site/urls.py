from __future__ import annotations

import sys

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import include, path, re_path
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt

from durable_site.middleware import is_overload, overload_response

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("lab/", include("lab.urls")),
    path("account/keys/", include("accesskeys.urls")),
    # AWS's REST API for the durable operations, at the root as AWS serves it (/2015-03-31/..., /2025-12-01/...).
    path("", include("wire.urls")),
    path("", include("executions.urls")),
]


@csrf_exempt
def bench_bare(request: HttpRequest, rest: str = "") -> HttpResponse:
    """B9's baseline: a boto3 call's full round trip through this server and Django, minus the wire API."""
    return HttpResponse(status=200, content_type="application/json")


if settings.DURABLE_BENCH_BARE_ENDPOINT:  # never in production: only the bench's own web server sets it
    urlpatterns.insert(0, re_path(r"^bench-bare/(?P<rest>[\s\S]*)\Z", bench_bare))


def server_error(request: HttpRequest) -> HttpResponse:
    """The 500 page, or a 503 when the database is only overloaded or restarting.

    Django calls this while handling the exception, so ``sys.exc_info`` holds it; this also
    covers errors raised in middleware, which the overload middleware's ``process_exception``
    never sees.
    """
    error = sys.exc_info()[1]
    if is_overload(error):
        assert error is not None
        return overload_response(request, error)
    return defaults.server_error(request)


handler500 = server_error
