"""The project's routes and ``/_echo/<path>``: what the WSGI server handed Django for a request."""

from __future__ import annotations

import time

from django.http import HttpRequest, JsonResponse
from django.urls import path

from durable_site.urls import handler500  # noqa: F401
from durable_site.urls import urlpatterns as project_urlpatterns


def echo(request: HttpRequest, rest: str) -> JsonResponse:
    time.sleep(float(request.GET.get("sleep", "0")))  # a request still in flight at a stop
    return JsonResponse({"rest": rest, "path_info": request.path_info, "raw_uri": request.META.get("RAW_URI")})


urlpatterns = [path("_echo/<path:rest>", echo), *project_urlpatterns]
