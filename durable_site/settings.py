"""Durable Lab settings: one file, driven by environment variables.

Nothing configured → embedded PostgreSQL + embedded Valkey broker (see ``embedded.py``).
``DATABASE_URL`` and ``CELERY_BROKER_URL`` switch to real servers.
"""

from __future__ import annotations

import os
import secrets
import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url

from durable_site import embedded, terminal

if not terminal.verbose():
    terminal.silence_known_warnings()

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).lower() in {"1", "true", "yes", "on"}


def local_secret_key(path: Path) -> str:
    """Return the key kept in ``path``, generating it (mode 0600) the first time.

    Written to a private temporary file and linked into place, so processes starting together
    (web, worker, scheduler) all read the one complete key.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(64))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process won the race; its key is the one
        finally:
            tmp.unlink()
    return path.read_text().strip()


# Debug pages show tracebacks and settings: only when asked for.
DEBUG = env_bool("DJANGO_DEBUG")
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or local_secret_key(embedded.DATA_DIR / "secret_key")
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",")
LOCAL_HOSTS = {"127.0.0.1", "localhost", "testserver", "[::1]", "::1"}
# Served only on this machine (``make run``), plain http must work: HTTPS-only cookies and
# redirects are the default once a public host name is allowed. Each has its own switch.
SERVED_LOCALLY = set(ALLOWED_HOSTS) <= LOCAL_HOSTS

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "axes",
    "django_htmx",
    "template_partials",
    "engine.contrib.django",
    "durable_site",
    "executions",
    "accesskeys",
    "lab",
    "wire",
    "bench",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # The engine's read models (the timeline) read through Django's connection, like the ORM.
    "engine.contrib.django.reading.ReadThroughDjangoMiddleware",
    "durable_site.middleware.DatabaseOverloadMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "durable_site.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "executions.context_processors.navigation",
            ],
        },
    },
]
WSGI_APPLICATION = "durable_site.wsgi.application"

DATABASE_URL = os.environ.get("DATABASE_URL") or embedded.embedded_database_url()
# Django's connections come from a psycopg pool per process (CONN_MAX_AGE must then be 0): a
# burst of requests waits up to DURABLE_WEB_DB_POOL_TIMEOUT seconds for one of
# DURABLE_WEB_DB_POOL_SIZE connections, then gets a 503 (durable_site.middleware), instead of
# each request thread opening its own until PostgreSQL refuses ("too many clients"). `make run`
# serves with 8 Gunicorn threads (durable_up.WEB_THREADS), so there no request waits at all.
#
# Connection budget of `make run` (PostgreSQL's max_connections is 100 by default):
#   web server     Django pool (10) + engine pool (DURABLE_DB_POOL_SIZE, 8)        = 18
#   scheduler      LISTEN connection (1) + engine pool (8) + Django (1)            = 10
#   worker parent  engine pool (8) + Django (1)                                    =  9
#   worker child   engine pool (8) + Django (1), times DURABLE_WORKERS (2)         = 18
#   a CLI command  engine pool (8) + Django (1)                                    =  9
# worst case 64 with every pool full; durable_up checks the sum against the server's
# max_connections and shrinks the engine pool of the single-threaded processes (worker
# children, scheduler) if more workers would not fit. Pools grow only on demand, so a
# single-threaded process holds one Django connection and one or two engine connections:
# measured, 50 concurrent starts under `make run` peaked at 17 connections in all.
WEB_DB_POOL = {
    "min_size": 1,
    "max_size": int(os.environ.get("DURABLE_WEB_DB_POOL_SIZE", "10")),
    "timeout": float(os.environ.get("DURABLE_WEB_DB_POOL_TIMEOUT", "10")),
}
# Health checks: after a database restart the pool hands out a fresh connection, not a dead one.
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0, conn_health_checks=True)}
DATABASES["default"].setdefault("OPTIONS", {})["pool"] = WEB_DB_POOL
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out username + address
    "django.contrib.auth.backends.ModelBackend",
]
# Login throttling: 5 wrong passwords for one username from one address lock that pair out
# for 15 minutes (the right password included); other users and addresses are unaffected.
AXES_FAILURE_LIMIT = int(os.environ.get("DURABLE_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("DURABLE_LOGIN_LOCKOUT_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "durable_site.lockout.lockout_response"
AXES_VERBOSE = False
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# `make run` collects the static files here before it starts the web server (durable_up).
STATIC_ROOT = embedded.DATA_DIR / "staticfiles"
# Collected with a content hash in every name and a gzipped twin (WhiteNoise): the web server
# sends them cached for good ("immutable"), and a changed file is a new URL. DEBUG (runserver)
# serves the source folders as they are, every reload seeing an edit.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# What is not hashed (a file a page names by hand) keeps a short max-age; the ETag makes the
# check after it a 304.
WHITENOISE_MAX_AGE = 0 if DEBUG else 300

SECURE_CONTENT_TYPE_NOSNIFF = True
if not DEBUG:
    https_only = not SERVED_LOCALLY
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", default=https_only)
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", default=https_only)
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "31536000" if https_only else "0"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0

# --- Celery: a transport only; durable state lives in PostgreSQL -----------------------------
# Nothing configured: the embedded Valkey server (a real Redis-protocol broker, no polling),
# which every process of this checkout finds on the same socket under .data/broker.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or embedded.embedded_broker_url()
CELERY_BROKER_TRANSPORT_OPTIONS = (
    embedded.filesystem_broker_options() if CELERY_BROKER_URL.startswith("filesystem") else {}
)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "durable"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# The Celery app the engine's tasks belong to, imported only by processes that queue or run them.
DURABLE_CELERY_APP = "durable_site.celery"

# --- Durable Lab -------------------------------------------------------------------------------
# Directories holding user handlers; each is put on sys.path for web, worker and scheduler.
DURABLE_HANDLER_PATHS = [p for p in os.environ.get("DURABLE_HANDLER_PATHS", "").split(":") if p]
for _path in DURABLE_HANDLER_PATHS:
    if _path not in sys.path:
        sys.path.insert(0, _path)
# Where a function's own runtime process (engine.runtimes) reaches the wire API: the web server
# `make run` starts (it sets this to its --port), or another address a worker host can reach.
DURABLE_API_URL = os.environ.get("DURABLE_API_URL") or "http://127.0.0.1:8000"
# The Node 22 binary runtime `nodejs22.x` starts (empty: that runtime is unavailable).
DURABLE_NODE = os.environ.get("DURABLE_NODE") or None
DURABLE_REGISTER_DEMOS = env_bool("DURABLE_REGISTER_DEMOS", default=True)
# How many comparison variants run at once: one per worker process, so that no variant's
# invocation waits behind another's (its execution timeout and scaled timers would count that
# wait). The others wait, unstarted, for a running one to end. `make run` sets DURABLE_WORKERS.
DURABLE_LAB_PARALLEL = max(1, int(os.environ.get("DURABLE_LAB_PARALLEL") or os.environ.get("DURABLE_WORKERS") or "2"))
# Extra duties of the scheduler loop (``manage.py durable_scheduler``): dotted path → seconds
# between runs. The lab starts waiting comparison variants as running ones end.
DURABLE_SCHEDULER_DUTIES = {"lab.services.admit_waiting_variants": 0.25}
# Benchmark B9 only (bench/wirebench.py sets it for the web server it starts): serve /bench-bare/…,
# an endpoint that answers 200 and does nothing else, the baseline of a wire call. Off everywhere else.
DURABLE_BENCH_BARE_ENDPOINT = env_bool("DURABLE_BENCH_BARE_ENDPOINT")


def _journal_plugin_installed() -> bool:
    from importlib.metadata import entry_points

    return any(ep.name == "durable-lab" for ep in entry_points(group="aws_durable_execution.plugins"))


# The SDK loads instrumentation plugins when a handler module is imported, so this must be set
# before any handler import. The plugin records step bodies for the replay record.
if _journal_plugin_installed():
    os.environ.setdefault("DURABLE_EXECUTION_PLUGINS", "durable-lab")

# Quiet unless DURABLE_VERBOSE (`make run VERBOSE=1`, `manage.py durable -v`): see terminal.py.
LOGGING = terminal.logging_config(os.environ.get("DURABLE_LOG_LEVEL", "INFO"))
