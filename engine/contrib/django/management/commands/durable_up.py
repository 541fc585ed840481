"""Run the whole stack in the foreground: web server, Celery worker and scheduler."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from durable_site import embedded


class Command(BaseCommand):
    help = "Migrate, ensure a local admin, then run web server, worker and scheduler until Ctrl-C."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--concurrency", type=int, default=int(os.environ.get("DURABLE_WORKERS", "2")))

    def handle(self, *args: Any, port: int, concurrency: int, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        self._ensure_admin(port)
        python = sys.executable
        commands = {
            "web": [python, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            "worker": [
                python,
                "-m",
                "celery",
                "-A",
                "durable_site",
                "worker",
                "-P",
                "prefork",
                "-c",
                str(concurrency),
                "-Q",
                "durable",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"durable-{os.getpid()}@%h",
                "-l",
                "INFO",
            ],
            "scheduler": [python, "manage.py", "durable_scheduler"],
        }
        processes = {name: subprocess.Popen(cmd) for name, cmd in commands.items()}
        self.stdout.write(self.style.SUCCESS(f"Durable Lab is up: http://127.0.0.1:{port}/  (Ctrl-C to stop)"))
        stopping = False

        def request_stop(*_: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        try:
            while not stopping:
                dead = [name for name, proc in processes.items() if proc.poll() is not None]
                if dead:
                    self.stderr.write(f"{', '.join(dead)} exited; stopping the stack")
                    break
                time.sleep(0.5)
        finally:
            self._stop(processes)

    def _stop(self, processes: dict[str, subprocess.Popen[bytes]]) -> None:
        for proc in processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in processes.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
        if not os.environ.get("DATABASE_URL"):
            embedded.stop_embedded_database()
        self.stdout.write("Durable Lab stopped.")

    def _ensure_admin(self, port: int) -> None:
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME", "admin")
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD", "admin")
        users = get_user_model().objects
        if not users.filter(is_superuser=True).exists():
            users.create_superuser(username=username, email="", password=password)
            self.stdout.write(
                self.style.WARNING(
                    f"Created a local admin. Log in at http://127.0.0.1:{port}/ as {username} / {password}"
                )
            )
        else:
            self.stdout.write(f"Log in at http://127.0.0.1:{port}/ with your admin account.")
