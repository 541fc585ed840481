"""Seed 000 in TypeScript, end to end on the real worker: the seed's handler, unchanged, on Node 22.

The lab's demo page runs the four scenarios in both languages (Python in the worker, the seed's
TypeScript in runtime processes, as Lambda runs it) as one comparison. Each language's run is
counted by the same selectors the page shows (``lab.counts``), and both are held to what the seed
states and to each other. Then a Node runtime is SIGKILLed mid-invocation: the invocation is
recorded as ``Runtime.ExitError`` and the execution recovers.

Half speed (time scale 0.5): the 60 s ExecutionTimeout becomes 30 s; the 3 s Timeout and the 10 s body stay real.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import demos
from lab import counts, selectors
from lab.models import Comparison
from tests.conftest import Stack, wait_until
from tests.lab.support import finished_rows, operator_client
from tests.runtimes.conftest import zipped

SCALE = "0.5"
LEAST_DEFAULT, LEAST_NONE, MOST_DEFAULT, MOST_NONE = (
    ("AT_LEAST_ONCE_PER_RETRY", "default"),
    ("AT_LEAST_ONCE_PER_RETRY", "none"),
    ("AT_MOST_ONCE_PER_RETRY", "default"),
    ("AT_MOST_ONCE_PER_RETRY", "none"),
)


@pytest.fixture(scope="module", autouse=True)
def _real_database(django_db_blocker: Any) -> Iterator[None]:
    # The worker and the web server read the session's database: no per-test copy.
    with django_db_blocker.unblock():
        yield


@pytest.fixture(scope="module")
def ts_stack(stack: Stack, web_server: str) -> Stack:
    """The worker, restarted so that its Node runtime processes checkpoint through this web server."""
    os.environ["DURABLE_API_URL"] = web_server
    stack.stop_worker()
    stack.start_worker()
    return stack


@pytest.fixture(scope="module")
def both(ts_stack: Stack) -> dict[str, Any]:
    """Seed 000's demo run from its page with "Both, side by side": eight variants, four per language."""
    client = operator_client(uuid.uuid4().hex[:8])
    response = client.post("/lab/demos/replay-not-retry/run/", {"time_scale": SCALE, "language": "both"})
    assert response.status_code == 302, response.content[:500]
    comparison = Comparison.objects.get(pk=int(response["Location"].rstrip("/").split("/")[-1]))
    rows = ended_rows(comparison)
    languages, table = counts.seed_000_side_by_side(rows)
    html = client.get(f"/lab/comparisons/{comparison.pk}/").content.decode()
    return {"comparison": comparison, "rows": rows, "languages": languages, "table": table, "html": html}


def ended_rows(comparison: Comparison) -> list[selectors.VariantRow]:
    """The rows once every variant's execution has ended, and (within a grace) its last invocation too.

    Waiting for the invocations alone (``finished_rows``) can hang: an invocation the worker never
    reports lost while its execution times out stays open for good (reported to the engine's owners).
    """

    def ended() -> list[selectors.VariantRow] | None:
        rows = selectors.comparison_rows(comparison=comparison)
        return rows if all(row.status not in {"RUNNING", "PENDING", "WAITING"} for row in rows) else None

    wait_until(ended, timeout=300, interval=1, message=f"comparison {comparison.pk}'s executions to end")
    try:
        return list(finished_rows(comparison, timeout=20).values())
    except pytest.fail.Exception:
        return selectors.comparison_rows(comparison=comparison)


def scenario(both: dict[str, Any], key: tuple[str, str]) -> counts.ScenarioSideBySide:
    return next(entry for entry in both["table"] if entry.key == key)


def language_counts(both: dict[str, Any], key: tuple[str, str]) -> tuple[counts.SeedCounts, counts.SeedCounts]:
    entry = scenario(both, key)
    python, typescript = entry.by_language["python"], entry.by_language["typescript"]
    assert python is not None and typescript is not None
    return python, typescript


def test_the_typescript_variants_run_the_seeds_exports_on_node(both: dict[str, Any]) -> None:
    typescript = [row for row in both["rows"] if row.variant.language == "typescript"]
    assert [row.variant.function_name for row in typescript] == [
        demos.SEED_000_TS[key] for key in (LEAST_DEFAULT, LEAST_NONE, MOST_DEFAULT, MOST_NONE)
    ]
    from engine.contrib.django.models import Function

    runtimes = set(Function.objects.filter(name__in=demos.SEED_000_TS.values()).values_list("runtime", flat=True))
    assert runtimes == {"nodejs22.x"}
    for row in typescript:
        assert row.data is not None
        assert row.data["execution"]["function_name"] == row.variant.function_name
    assert both["languages"] == ["python", "typescript"]


@pytest.mark.parametrize("key", [LEAST_DEFAULT, LEAST_NONE])
def test_at_least_once_runs_the_body_in_every_invocation_in_both_languages(
    both: dict[str, Any], key: tuple[str, str]
) -> None:
    python, typescript = language_counts(both, key)
    for run in (python, typescript):
        # The seed: the body runs in every invocation until the execution times out, attempt 1 throughout.
        assert run.status == "TIMED_OUT", run
        assert run.pattern == "every invocation", run
        assert run.attempts == 1, run
        assert run.invocations >= 3, run
    assert (python.pattern, python.attempts, python.status) == (typescript.pattern, typescript.attempts, "TIMED_OUT")
    # The count of invocations is bound by the execution timeout and the re-invoke backoff: the same
    # engine gives both the same, give or take the last one the timeout cuts short.
    assert abs(python.invocations - typescript.invocations) <= 1, (python, typescript)


def test_at_most_once_with_retry_runs_the_body_every_second_invocation_in_both_languages(
    both: dict[str, Any],
) -> None:
    python, typescript = language_counts(both, MOST_DEFAULT)
    for run in (python, typescript):
        assert run.pattern == "every second invocation", run
        # Each body run is a new attempt: the invocation between records StepInterruptedError.
        assert run.attempts == run.body_runs >= 2, run
        assert run.status in {"TIMED_OUT", "FAILED"}, run
    # Retry delays are jittered in both SDKs: the totals may differ by one attempt, never the pattern.
    assert abs(python.attempts - typescript.attempts) <= 1, (python, typescript)


def test_at_most_once_without_retry_runs_the_body_exactly_once_in_both_languages(both: dict[str, Any]) -> None:
    python, typescript = language_counts(both, MOST_NONE)
    for run in (python, typescript):
        assert run.runs == (1, 0), run
        assert (run.attempts, run.invocations, run.status) == (1, 2, "FAILED"), run
        assert run.error_type == "StepError", run
    assert python.key() == typescript.key()
    ts_row = next(r for r in both["rows"] if r.variant.function_name == demos.SEED_000_TS[MOST_NONE])
    assert ts_row.data is not None
    assert "interruption" in ts_row.data["execution"]["error"]["ErrorMessage"]


def test_every_run_is_what_the_seed_says_and_the_page_says_so(both: dict[str, Any]) -> None:
    for entry in both["table"]:
        assert [agrees for _, agrees in entry.agreement] == [True, True], entry
        assert entry.verdict in {"same", "same pattern"}, entry
    html = both["html"]
    assert "Python and TypeScript, side by side" in html
    assert "does not agree" not in html and "≠ differs" not in html
    # The page's boxes are the selector's counts, language by language.
    shown = re.findall(r'data-lang="(\w+)" data-col="runs">\s*<span class="runs" data-runs="([0-9 ]*)"', html)
    assert shown == [
        (language, " ".join(map(str, c.runs)))
        for entry in both["table"]
        for language, c in entry.by_language.items()
        if c is not None
    ]
    assert len(shown) == 8


def test_the_log_count_matches_the_engines_body_run_record(both: dict[str, Any]) -> None:
    """The engine records each body run, in either language (the SDK's plugin hooks: in the
    worker for Python, in the runtime process for TypeScript): the counts' log-based reading, the
    seed's own method, must say the same, invocation by invocation."""
    for row in both["rows"]:
        seed = counts.seed_000_counts(row)
        assert seed is not None and row.data is not None
        step = next(op for op in row.data["operations"] if op["name"] == counts.SEED_000_STEP)
        recorded = {run["invocation_seq"] for run in step["body_runs"]}
        assert seed.runs == tuple(int(seq in recorded) for seq in range(1, seed.invocations + 1)), row.variant.label


# --- a SIGKILLed Node runtime -------------------------------------------------------------------------

NAPPER = """
import { writeFileSync } from 'node:fs';
import { withDurableExecution } from '@aws/durable-execution-sdk-js';
import { recordEffect } from 'durable-lab';

type Nap = { pidfile: string; seconds: number };

export const handler = withDurableExecution(async (event: Nap, context) => {
  writeFileSync(event.pidfile, String(process.pid));
  const napped = await context.step('nap', async () => {
    await recordEffect('nap', 'the one nap');
    await new Promise((resolve) => setTimeout(resolve, event.seconds * 1000));
    return process.pid;
  });
  return { napped, pid: process.pid };
});
"""


def test_a_sigkilled_node_runtime_is_an_exit_error_and_the_execution_recovers(ts_stack: Stack, tmp_path: Path) -> None:
    import engine
    from engine.contrib.django.models import Invocation

    lam = engine.client()
    arn, killed = _start_napper(lam, "ts-kill", tmp_path, seconds=3)
    assert "node" in Path(f"/proc/{killed}/cmdline").read_bytes().decode(errors="replace")
    time.sleep(1)  # well inside the step's 3 s body
    os.kill(killed, signal.SIGKILL)

    def ended() -> dict[str, Any] | None:
        described = lam.get_durable_execution(DurableExecutionArn=arn)
        return None if described["Status"] == "RUNNING" else described

    described = wait_until(ended, timeout=90, message="the execution to end")
    assert described["Status"] == "SUCCEEDED", described
    result = json.loads(described["Result"])
    assert result["pid"] != killed and result["napped"] == result["pid"], result
    invocations = list(Invocation.objects.filter(execution__arn=arn).order_by("seq").values("outcome", "error"))
    first = invocations[0]["error"]
    assert first["ErrorType"] == "Runtime.ExitError" and "signal 9" in first["ErrorMessage"], invocations
    assert invocations[0]["outcome"] == "crashed", invocations
    assert invocations[-1]["error"] is None and invocations[-1]["outcome"] == "succeeded", invocations
    # The step's body was cut short by the kill, then ran again to its end: the engine's record.
    runs = _body_runs(arn, "nap")
    assert runs[0] == (1, "interrupted") and runs[-1] == (len(invocations), "succeeded"), runs


def _start_napper(lam: Any, prefix: str, tmp_path: Path, seconds: int) -> tuple[str, int]:
    """A new NAPPER function's execution, once its runtime process has said its pid."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    lam.create_function(
        FunctionName=name,
        Runtime="nodejs22.x",
        Role="arn:aws:iam::123456789012:role/durable-lab",
        Handler="app.handler",
        Code={"ZipFile": zipped({"app.ts": NAPPER})},
        Timeout=20,
        DurableConfig={"ExecutionTimeout": 120, "RetentionPeriodInDays": 1},
    )
    pidfile = tmp_path / "pid"
    payload = json.dumps({"pidfile": str(pidfile), "seconds": seconds})
    arn = lam.invoke(FunctionName=name, InvocationType="Event", Payload=payload)["DurableExecutionArn"]
    pid = int(wait_until(lambda: pidfile.exists() and pidfile.read_text(), timeout=60, message="the Node pid"))
    return arn, pid


def _body_runs(arn: str, step: str) -> list[tuple[int, str]]:
    from engine.contrib.django.models import BodyRun

    runs = BodyRun.objects.filter(execution__arn=arn, name=step).order_by("started_at")
    return list(runs.values_list("invocation_seq", "outcome"))


def test_a_fault_armed_after_a_typescript_step_body_kills_its_runtime_before_the_result_is_saved(
    ts_stack: Stack, tmp_path: Path
) -> None:
    """At-least-once, shown in TypeScript: the body ran to its end, the runtime died before the
    step's result was checkpointed, so the next invocation runs the body again."""
    import engine
    from engine import faults
    from engine.contrib.django.models import Fault, Invocation

    lam = engine.client()
    arn, killed = _start_napper(lam, "ts-fault", tmp_path, seconds=2)
    faults.arm(arn, "nap", "after_body", user="tester")  # while its 2 s body runs

    def ended() -> dict[str, Any] | None:
        described = lam.get_durable_execution(DurableExecutionArn=arn)
        return None if described["Status"] == "RUNNING" else described

    described = wait_until(ended, timeout=90, message="the execution to end")
    assert described["Status"] == "SUCCEEDED", described
    assert json.loads(described["Result"])["pid"] != killed
    invocations = list(Invocation.objects.filter(execution__arn=arn).order_by("seq").values_list("outcome", flat=True))
    assert invocations == ["killed", "succeeded"], invocations
    assert Fault.objects.get(execution__arn=arn).invocation_seq == 1
    assert _body_runs(arn, "nap") == [(1, "succeeded"), (2, "succeeded")]
    # The body's side effect happened twice, the second time a duplicate, each in its invocation.
    from engine.contrib.django.models import Effect, Operation

    nap_id = Operation.objects.get(execution__arn=arn, name="nap").op_id
    effects = Effect.objects.filter(execution__arn=arn).order_by("at")
    assert list(effects.values_list("op_id", "invocation_seq", "attempt", "duplicate")) == [
        (nap_id, 1, 1, False),
        (nap_id, 2, 1, True),
    ]
