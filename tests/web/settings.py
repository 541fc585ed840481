"""The project's settings plus one echo route, for the web server's own tests (test_web_server.py)."""

from durable_site.settings import *  # noqa: F403

ROOT_URLCONF = "tests.web.urls"
