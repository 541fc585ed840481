"""Run the whole stack in the foreground: web server, Celery worker and scheduler, supervised."""

from __future__ import annotations

import http.client
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from durable_site import embedded, supervisor, terminal
from engine import db

# Connections kept free for psql, a CLI command and Django's own checks (see settings.py).
RESERVED_CONNECTIONS = 15
ENGINE_POOL_FLOOR = 2
EMBEDDED_CHECK_EVERY = 5.0
WEB_PROBE_TIMEOUT = 0.5  # seconds: a web part still loading Django holds the request, unanswered
# The web server's request threads: no more than its Django pool holds, so none waits for one.
WEB_THREADS = min(8, settings.WEB_DB_POOL["max_size"])


def web_command(port: int) -> list[str]:
    """The web server of `make run`, on this machine only.

    Gunicorn with threads (durable_site/gunicorn_config.py), not runserver: one process with a
    fixed set of threads that fits the connection pools, a listen backlog of 1024 where
    runserver's 10 reset a burst of simultaneous requests, a graceful stop on SIGTERM, and the
    request line as sent (``RAW_URI``) for signature checks of percent-encoded paths.
    """
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--config=python:durable_site.gunicorn_config",
        f"--bind=127.0.0.1:{port}",
        f"--threads={WEB_THREADS}",
        "durable_site.wsgi:application",
    ]


def web_answers(port: int) -> bool:
    """Whether the web part answers a request: its socket is open before it has loaded Django,
    and a request sent then waits, so "is up" is said only after an answer."""
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=WEB_PROBE_TIMEOUT)
    try:
        client.request("GET", "/accounts/login/")
        return client.getresponse().status < 500
    except OSError:
        return False
    finally:
        client.close()


class Command(BaseCommand):
    help = "Migrate, ensure a local admin, then run web server, worker and scheduler until Ctrl-C."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--concurrency", type=int, default=int(os.environ.get("DURABLE_WORKERS", "2")))
        # Read by manage.py before the settings (terminal.note_verbose_flag); here for --help.
        parser.add_argument(
            "-v", "--verbose", action="store_true", help="every part's detailed log (DURABLE_VERBOSE=1)"
        )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def handle(self, *args: Any, port: int, concurrency: int, **options: Any) -> None:
        # Read before anything else: the settings of this process resolved the embedded server.
        embedded_db = not os.environ.get("DATABASE_URL")
        embedded_broker = not os.environ.get("CELERY_BROKER_URL")
        status_path = embedded.DATA_DIR / "run.json"
        self._end_previous_run(status_path)
        stack: supervisor.Supervisor | None = None
        try:
            call_command("migrate", interactive=False, verbosity=0)
            # The web part serves the collected files (hashed names, gzipped twins) only.
            call_command("collectstatic", interactive=False, verbosity=0)
            self._ensure_admin(port)
            stack = supervisor.Supervisor(
                self._parts(port, concurrency), status_path, self._say, Path(settings.BASE_DIR)
            )
            stack.extra_status = {
                "url": f"http://127.0.0.1:{port}/",
                "embedded_database": embedded_db,
                "embedded_broker": embedded_broker,
            }
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, stack.request_stop)
            # Nothing here needs a connection any more, and the pools' threads must not be
            # running while the parts are forked.
            connection.close_pool()
            db.close()
            stack.start_all()
            stack.run(tick=self._ticks(stack, embedded_db, embedded_broker, port))
        finally:
            # Also on a crash of this process: no part and no database outlives `make run`.
            if stack is not None:
                stack.stop_all()
            if embedded_db:
                embedded.stop_embedded_database()
            if embedded_broker:
                embedded.stop_embedded_broker()
            self.stdout.write("Durable Lab stopped.")

    def _say(self, line: str) -> None:
        self.stderr.write(line)
        self.stderr.flush()

    def _end_previous_run(self, status_path: Path) -> None:
        other = supervisor.live_previous_supervisor(status_path)
        if other is not None:
            raise CommandError(f"Durable Lab is already running (supervisor pid {other}); stop it first.")
        ended = supervisor.end_leftovers(status_path)
        if ended:
            self._say(f"Ended what a previous run left behind: {', '.join(ended)}")

    def _parts(self, port: int, concurrency: int) -> list[supervisor.Part]:
        python = sys.executable
        # The parts connect to the servers this process resolved; none starts a server itself.
        env = {
            **os.environ,
            "DATABASE_URL": settings.DATABASE_URL,
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "PYTHONUNBUFFERED": "1",
        }
        # The lab runs as many comparison variants at once as the worker has processes.
        env["DURABLE_WORKERS"] = str(concurrency)
        # Functions with their own runtime process checkpoint through this run's web server.
        env.setdefault("DURABLE_API_URL", f"http://127.0.0.1:{port}")
        env[terminal.SUPERVISED_ENV] = "1"  # this supervisor reports the faults (terminal.py)
        single = {**env, "DURABLE_DB_POOL_SIZE": str(self._single_threaded_pool_size(concurrency))}
        quiet = [] if terminal.verbose() else ["--quiet"]  # no banner: one line, "<name> ready."
        worker = [python, "-m", "celery", "-A", "durable_site", *quiet, "worker", "-P", "prefork"]
        worker += ["-c", str(concurrency), "-Q", "durable", "--without-gossip", "--without-mingle"]
        worker += ["-n", f"durable-{os.getpid()}@%h", "-l", "INFO"]
        return [
            supervisor.Part("web", web_command(port), env),
            supervisor.Part("worker", worker, single),
            supervisor.Part("scheduler", [python, "manage.py", "durable_scheduler"], single),
        ]

    def _single_threaded_pool_size(self, concurrency: int) -> int:
        """The engine pool of the worker's processes and the scheduler, fitted to max_connections.

        Worst case (settings.py has the table): web = Django pool + engine pool; each of the
        worker's 1 + ``concurrency`` processes and the scheduler = engine pool + 2.
        """
        engine_pool = int(os.environ.get("DURABLE_DB_POOL_SIZE", "8"))
        web = settings.WEB_DB_POOL["max_size"] + engine_pool
        with connection.cursor() as cursor:
            cursor.execute("SHOW max_connections")
            budget = int(cursor.fetchone()[0]) - RESERVED_CONNECTIONS - web
        single_processes = concurrency + 2
        fitted = max(ENGINE_POOL_FLOOR, min(engine_pool, budget // single_processes - 2))
        if fitted < engine_pool:
            self._say(f"{concurrency} workers: engine pool per worker process lowered to {fitted} connections")
        if (fitted + 2) * single_processes > budget:
            self._say("warning: this many workers can exceed PostgreSQL's max_connections")
        return fitted

    def _ticks(self, stack: supervisor.Supervisor, database: bool, broker: bool, port: int) -> Callable[[], None]:
        """Every round: "is up" once the web part answers, the activity lines
        (terminal.ActivityReport), the embedded servers."""
        report = terminal.ActivityReport(settings.DATABASE_URL)
        watch = self._embedded_watch(stack, database, broker)
        announced = False

        def tick() -> None:
            nonlocal announced
            if not announced and web_answers(port):
                self.stdout.write(self.style.SUCCESS(f"Durable Lab is up: http://127.0.0.1:{port}/  (Ctrl-C to stop)"))
                announced = True
            report.poll()
            watch()

        return tick

    def _embedded_watch(self, stack: supervisor.Supervisor, database: bool, broker: bool) -> Callable[[], None]:
        """Restart the embedded PostgreSQL or broker if it stopped (they are parts of the stack too)."""
        last_check = time.monotonic()
        watched = []
        if database:
            watched.append(
                (
                    "PostgreSQL",
                    "database",
                    lambda: embedded.server_process() is not None,
                    embedded.embedded_database_url,
                )
            )
        if broker:
            watched.append(("broker", "broker", embedded.broker_answers, embedded.embedded_broker_url))
        restarts = dict.fromkeys((key for _, key, _, _ in watched), 0)

        def tick() -> None:
            nonlocal last_check
            if time.monotonic() - last_check < EMBEDDED_CHECK_EVERY:
                return
            last_check = time.monotonic()
            for label, key, running, start in watched:
                if running():
                    continue
                restarts[key] += 1
                self._say(f"embedded {label} is not running; restart {restarts[key]}")
                stack.extra_status[f"embedded_{key}_restarts"] = restarts[key]
                stack.write_status()
                try:
                    start()
                except Exception as error:  # retried on the next check
                    self._say(f"embedded {label} did not start: {error}")

        return tick

    def _ensure_admin(self, port: int) -> None:
        users = get_user_model().objects
        if users.filter(is_superuser=True).exists():
            self.stdout.write(f"Log in at http://127.0.0.1:{port}/ with your admin account.")
            return
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME", "admin")
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD") or secrets.token_urlsafe(12)
        try:
            validate_password(password, users.model(username=username))
        except ValidationError as error:
            raise CommandError(f"DJANGO_SUPERUSER_PASSWORD is too weak: {' '.join(error.messages)}") from error
        users.create_superuser(username=username, email="", password=password)
        shown = "(from DJANGO_SUPERUSER_PASSWORD)" if "DJANGO_SUPERUSER_PASSWORD" in os.environ else password
        self.stdout.write(
            self.style.WARNING(
                f"Created the first admin. Log in at http://127.0.0.1:{port}/ as {username} / {shown}\n"
                "This password is shown only once: write it down, or change it with "
                f"`manage.py changepassword {username}`."
            )
        )
