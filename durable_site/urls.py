from __future__ import annotations

import sys

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views import defaults

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
