"""The project's routes, ``/_echo/<path>`` (what the WSGI server handed Django for a request) and
``/_db/`` (which server process Django's pooled connection talks to)."""

from __future__ import annotations

import time

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import path

from durable_site.urls import handler500  # noqa: F401
from durable_site.urls import urlpatterns as project_urlpatterns


def echo(request: HttpRequest, rest: str) -> JsonResponse:
    time.sleep(float(request.GET.get("sleep", "0")))  # a request still in flight at a stop
    return JsonResponse({"rest": rest, "path_info": request.path_info, "raw_uri": request.META.get("RAW_URI")})


def backend(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    return JsonResponse({"pid": pid})


urlpatterns = [path("_echo/<path:rest>", echo), path("_db/", backend), *project_urlpatterns]
