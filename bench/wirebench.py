"""B9: the wire API's own cost, boto3 over HTTP (benchmarks.md, re-based section).

Engine side: ``send_durable_execution_callback_success`` to an execution suspended on its
callback, and ``invoke(InvocationType="Event")`` of a no-op function, each through an unchanged
``boto3.client("lambda")`` signing with a real access key, against `make run`'s web server
(Gunicorn, ``durable_up.web_command``) started by the bench on the bench database. Baseline: the same call, built the same
way (same config, key, operation, parameters and payload, so the same serialising and signing),
sent to ``/bench-bare/…`` on the same server process: a Django view that answers 200 and does
nothing else (served only when ``DURABLE_BENCH_BARE_ENDPOINT`` is set, which only this bench
does). The ratio is what SigV4 verification, parsing, the engine's transaction and the Celery
publish add to a boto3 round trip. Interleaved bare-real per call; p50 of each side.
"""

from __future__ import annotations

import http.client
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.harness import ROOT, percentile
from bench.stackbench import Live, _latency_summary, _suspended_callback

REGION = "us-east-1"
BARE_PREFIX = "/bench-bare"
CALLS = 60  # per operation and side; about 5 s in all on a loaded 2-core box
WARMUP = 5


def b9(live: Live, *, env: dict[str, str]) -> None:
    """``env``: the bench's child environment (its database), for the web server."""
    ctx = live.ctx
    ctx.function("bench-b9-callback", "bench.handlers.callback_then_step")
    ctx.function("bench-b9-noop", "bench.handlers.noop")
    arns = [live.start("bench-b9-callback", {}) for _ in range(CALLS + WARMUP)]
    callback_ids = [_suspended_callback(ctx, arn) for arn in arns]  # set up, not timed
    keys = _access_key()
    with web_server(env) as url:
        real, bare = _client(url, keys), _client(url + BARE_PREFIX, keys)

        def callback(client: Any, callback_id: str) -> Any:
            return client.send_durable_execution_callback_success(CallbackId=callback_id, Result=b'"ok"')

        def invoke(client: Any, _: Any) -> Any:
            return client.invoke(FunctionName="bench-b9-noop", InvocationType="Event", Payload=b"{}")

        results = {
            "callback_success": _interleaved(real, bare, callback, callback_ids, check=_callback_ok),
            "invoke_event": _interleaved(real, bare, invoke, [None] * (WARMUP + CALLS), check=_invoke_ok),
        }
    for arn in arns:
        live.watcher.wait(arn, timeout=60)  # every callback reached its execution
    ctx.results["B9"] = results | {"calls": CALLS, "server": " ".join(web_command_of_make_run())}
    for name, summary in results.items():
        ctx.log(
            f"B9 {name}: boto3 over HTTP p50 {summary['engine_ms']['p50']:.2f} ms, bare endpoint p50 "
            f"{summary['baseline_ms']['p50']:.2f} ms, ratio {summary['ratio_p50']:.2f}"
        )


def _callback_ok(response: dict[str, Any]) -> None:
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200, response


def _invoke_ok(response: dict[str, Any]) -> None:
    assert response["StatusCode"] == 202 and response["DurableExecutionArn"], response


def _interleaved(
    real: Any, bare: Any, call: Callable[[Any, Any], Any], args: list[Any], check: Callable[[Any], None]
) -> dict[str, Any]:
    """bare, real, bare, real…, the pair with the same argument: seconds per call on each side,
    after ``WARMUP`` untimed pairs."""
    engine_s: list[float] = []
    base_s: list[float] = []
    for index, arg in enumerate(args):
        began = time.perf_counter()
        call(bare, arg)
        bare_s = time.perf_counter() - began
        began = time.perf_counter()
        response = call(real, arg)
        real_s = time.perf_counter() - began
        check(response)
        if index >= WARMUP:
            base_s.append(bare_s)
            engine_s.append(real_s)
    summary = _latency_summary(engine_s, base_s)
    summary["engine_ms"]["p90"] = percentile(engine_s, 90) * 1e3
    return summary


def _client(url: str, keys: dict[str, str]) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(retries={"total_max_attempts": 1}, read_timeout=60, connect_timeout=10)
    return boto3.client("lambda", endpoint_url=url, region_name=REGION, config=config, **keys)


def _access_key() -> dict[str, str]:
    """A staff user's access key in the bench database, as `durable create-access-key` makes one."""
    from django.contrib.auth import get_user_model

    from accesskeys import services

    user = get_user_model().objects.create_user(f"bench-b9-{uuid.uuid4().hex[:8]}", is_staff=True)
    made = services.access_key_create(user=user)
    return {"aws_access_key_id": made.key.access_key_id, "aws_secret_access_key": made.secret}


@contextmanager
def web_server(env: dict[str, str]) -> Iterator[str]:
    """`make run`'s web server on a free port, on the bench database, with the bare endpoint on."""
    from durable_site.management.commands.durable_up import web_command

    port = _free_port()
    log = Path(tempfile.mkdtemp(prefix="durable-bench-web-")) / "web.log"
    env = {**env, "DURABLE_BENCH_BARE_ENDPOINT": "1"}
    env.pop("DJANGO_DEBUG", None)
    with log.open("w") as out:
        proc = subprocess.Popen(
            web_command(port), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_until_serving(port, proc, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def web_command_of_make_run() -> list[str]:
    from durable_site.management.commands.durable_up import web_command

    return web_command(0)[2:]  # the server and its options, without the interpreter


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_serving(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"web server exited early:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("POST", f"{BARE_PREFIX}/ready", body=b"")
            status = conn.getresponse().status
            conn.close()
        except OSError:
            time.sleep(0.2)
            continue
        if status == 200:
            return
        raise RuntimeError(f"{BARE_PREFIX}/ready answered {status}: the bare endpoint is not on")
    raise RuntimeError(f"web server not serving within {timeout}s:\n{log.read_text(errors='replace')[-3000:]}")
