"""B12: 50 executions of 10 steps and a 1 s wait, first start to last done, on a `make run`-like
stack (embedded PostgreSQL, Celery worker prefork -c 2, scheduler) in a temporary folder.

The broker is the one the environment names, else the embedded one, so the two runs B12 compares
differ only in their broker::

    env -u CELERY_BROKER_URL python -m bench.zero_config          # the zero-config stack
    CELERY_BROKER_URL=redis://127.0.0.1:6379/6 python -m bench.zero_config   # the machine's Redis
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=50)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="durable-b12-"))
    folder.chmod(0o755)  # pgserver runs PostgreSQL as its own user
    os.environ.pop("DATABASE_URL", None)  # always the embedded PostgreSQL: only the broker varies
    os.environ["DURABLE_DATA_DIR"] = str(folder / "data")
    os.environ["DJANGO_SETTINGS_MODULE"] = "durable_site.settings"
    os.environ["DURABLE_REGISTER_DEMOS"] = "0"
    try:
        print(json.dumps(measure(folder, args.executions, args.steps)))
    finally:
        from durable_site import embedded

        embedded.stop_embedded_broker()
        embedded.stop_embedded_database()
        shutil.rmtree(folder, ignore_errors=True)


def measure(folder: Path, executions: int, steps: int) -> dict[str, object]:
    import django

    django.setup()  # the settings start the embedded servers
    from django.conf import settings
    from django.core.management import call_command

    import engine
    from bench.harness import DoneWatcher, Stack
    from engine import registry
    from engine.celery_tasks import CeleryDispatcher

    call_command("migrate", interactive=False, verbosity=0)
    env = {**os.environ, "DATABASE_URL": settings.DATABASE_URL, "CELERY_BROKER_URL": settings.CELERY_BROKER_URL}
    env.update({"PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"})
    config = {"Handler": "bench.handlers.steps_and_a_wait", "Timeout": 900}
    registry.create_function(
        "b12", {**config, "DurableConfig": {"ExecutionTimeout": 3600, "RetentionPeriodInDays": 1}}, replace=True
    )
    engine.configure(dispatcher=CeleryDispatcher())
    lam = engine.client()
    watcher = DoneWatcher(settings.DATABASE_URL)
    stack = Stack(env)
    stack.start(scheduler=True)
    try:
        payload = json.dumps({"steps": steps})
        start = time.perf_counter()
        arns = [
            lam.invoke(FunctionName="b12", InvocationType="Event", Payload=payload)["DurableExecutionArn"]
            for _ in range(executions)
        ]
        last_done = max(watcher.wait(arn, timeout=300) for arn in arns)
    finally:
        stack.stop()
        watcher.close()
    broker = "embedded" if "CELERY_BROKER_URL" not in os.environ else settings.CELERY_BROKER_URL
    return {
        "bench": "B12",
        "broker": broker,
        "executions": executions,
        "steps": steps,
        "seconds": round(last_done - start, 3),
    }


if __name__ == "__main__":
    sys.exit(main())
