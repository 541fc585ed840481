"""Benchmarks that run the engine in this process, without Celery: B1, B4, B4b, B5."""

from __future__ import annotations

import json
import statistics
import time
from types import SimpleNamespace
from typing import Any

import psycopg
from aws_durable_execution_sdk_python.execution import (
    DurableExecutionInvocationInputWithClient,
    InitialExecutionState,
)
from aws_durable_execution_sdk_python.identifier import OperationIdNamespace
from aws_durable_execution_sdk_python.lambda_service import (
    CheckpointOutput,
    CheckpointUpdatedExecutionState,
    OperationUpdate,
    StateOutput,
)
from psycopg.types.json import Jsonb

from bench import baselines, handlers
from bench.context import MAX_EXECUTION_TIMEOUT, BenchContext
from bench.harness import Ratio, SqlCounts, commit_counter
from engine import db as engine_db
from engine import invoker, machine, speedups
from engine.duties.claim import claim_invocation
from engine.duties.end import complete_invocation
from engine.duties.timers import fire_due_timers
from engine.duties.tokens import mint_callback_id
from engine.duties.unit import utcnow
from engine.machine import Clock

# --- B1: step checkpoint overhead ------------------------------------------------------------


def engine_seconds_per_step(ctx: BenchContext, fn: dict[str, Any], steps: int) -> float:
    row = ctx.start(fn, {"steps": steps})
    ctx.dispatcher.drain()
    start = time.perf_counter()
    invoker.run_invocation(row["id"])
    elapsed = time.perf_counter() - start
    state = ctx.execution(row["id"])
    if state["status"] != "SUCCEEDED":
        with engine_db.transaction() as conn:
            ended = conn.execute(
                "SELECT outcome, error FROM durable_invocation WHERE execution_id = %s ORDER BY seq", (row["id"],)
            ).fetchall()
        raise RuntimeError(f"the execution of {fn['name']} is {state['status']} after its invocation: {ended}")
    return elapsed / steps


def step_counters(ctx: BenchContext, fn: dict[str, Any], small: int, large: int) -> dict[str, Any]:
    """Commits and statements per step, as the marginal cost between a small and a large run.

    The difference cancels the fixed cost of starting, claiming and finishing an execution.
    """
    measured: dict[int, dict[str, Any]] = {}
    for steps in (small, large):
        with commit_counter(ctx.dsn, ctx.close_pools) as commits, ctx.counter:
            before = ctx.counter.snapshot()
            ctx.run_inline(ctx.start(fn, {"steps": steps})["id"])
            sql: SqlCounts = ctx.counter.snapshot() - before
        measured[steps] = {"commits": commits["commits"], "statements": sql.statements, "calls": sql.calls}
    span = large - small
    return {
        "commits_per_step": (measured[large]["commits"] - measured[small]["commits"]) / span,
        "statements_per_step": (measured[large]["statements"] - measured[small]["statements"]) / span,
        "calls_per_step": (measured[large]["calls"] - measured[small]["calls"]) / span,
        "runs": {str(k): v for k, v in measured.items()},
    }


class AnswerAtOnce:
    """A service client that accepts every checkpoint at once, in memory: no database, no journal.

    Against it, an invocation costs what SDK 3.0.0 (with the engine's seams) costs by itself: its
    step bookkeeping, result encoding and the hand-offs to and from its checkpoint thread. The
    updates are turned into dicts, as the engine's client does before its state machine reads them.
    A wait's START is answered with the wait, STARTED and not yet due, as a service answers it.
    """

    def __init__(self) -> None:
        self.calls = 0

    def checkpoint(
        self,
        durable_execution_arn: str,
        checkpoint_token: str,
        updates: list[OperationUpdate],
        client_token: str | None,
    ) -> CheckpointOutput:
        self.write()
        self.calls += 1
        operations = [invoker.operation_from_doc(op) for op in self.answer([update.to_dict() for update in updates])]
        return CheckpointOutput(str(self.calls), CheckpointUpdatedExecutionState(operations=operations))

    def write(self) -> None:
        """The durable write a checkpoint call waits for: none here."""

    def answer(self, updates: list[dict[str, Any]]) -> list[Any]:
        """The operations the answer carries. The engine's own state machine answers a wait's START
        (as the service would: STARTED, not yet due); nothing else in B1's or B4's handlers needs one."""
        waits = [u for u in updates if u["Type"] == "WAIT" and u["Action"] == "START"]
        return machine.apply_batch({}, waits, Clock(utcnow()), mint_callback_id).changed_ops

    def get_execution_state(self, *args: Any, **kwargs: Any) -> StateOutput:
        raise AssertionError("the invocation's event carries its whole state")


class WriteEachCheckpoint(AnswerAtOnce):
    """The ideal engine of benchmarks.md's re-based rows: ``AnswerAtOnce`` plus the baseline's own
    durable write, one INSERT+COMMIT per checkpoint call (SDK 3.0.0 makes one call per step).

    Nothing an engine could leave out is left in: no state to load, no journal, no history, just
    the one write a step must wait for before the SDK may run the next.
    """

    def __init__(self, conn: psycopg.Connection) -> None:
        super().__init__()
        self.conn = conn

    def write(self) -> None:
        self.conn.execute(baselines.INSERT_SQL, (baselines.PAYLOAD_JSON,))


class KeepEveryOperation(WriteEachCheckpoint):
    """The ideal engine across invocations (B2b's): ``WriteEachCheckpoint`` that also applies every
    update to the operations it keeps in memory and answers with what changed, as a service must
    to hand the next invocation its state. Nothing is read back: the state travels with the message.
    """

    def __init__(self, conn: psycopg.Connection, ops: dict[str, Any]) -> None:
        super().__init__(conn)
        self.ops = ops

    def answer(self, updates: list[dict[str, Any]]) -> list[Any]:
        changed = machine.apply_batch(self.ops, updates, Clock(utcnow()), mint_callback_id).changed_ops
        self.ops.update((op["Id"], op) for op in changed)
        return changed


def ideal_invocation(conn: psycopg.Connection, ops: dict[str, Any], steps: int) -> bool:
    """One invocation of B2b's handler on the ideal engine: the SDK alone replays ``ops`` and runs
    on, one INSERT+COMMIT per checkpoint call and one for the ending (the durable record of who runs
    next); the waits it started are then fired at once, as B2b's tiny time scale makes them due.
    ``ops`` is updated in place. Return True when the execution is done."""
    operations = [invoker.operation_from_doc(op) for op in ops.values()]
    service = KeepEveryOperation(conn, ops)
    _, _, output = _run_on_sdk_alone(handlers.suspending_steps, {"steps": steps}, operations, service)
    service.write()  # the ending's record
    if output.get("Status") == "SUCCEEDED":
        return True
    if output.get("Status") != "PENDING":
        raise RuntimeError(f"the ideal engine's invocation ended {output}")
    clock = Clock(utcnow())
    for op in list(ops.values()):
        if op["Type"] == "WAIT":
            ops.update((fired["Id"], fired) for fired in machine.fire_wait(op, clock).changed_ops)
    return False


def ideal_engine_seconds_per_step(dsn: str, steps: int, *, synchronous_commit: bool = True) -> float:
    """B1's handler run by the SDK against ``WriteEachCheckpoint`` on its own connection."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"SET synchronous_commit = {'on' if synchronous_commit else 'off'}")
        elapsed, client, output = _run_on_sdk_alone(handlers.steps, {"steps": steps}, [], WriteEachCheckpoint(conn))
    if output.get("Status") != "SUCCEEDED" or client.calls != steps:
        raise RuntimeError(f"the ideal-engine run ended {output} after {client.calls} checkpoint calls")
    return elapsed / steps


def ideal_engine_for(dsn: str, steps: int, ready: Any, seconds: float, results: Any) -> None:
    """Run the ideal engine on executions of ``steps`` steps for ``seconds``; put the steps done.

    Runs in a spawned process (B7's baseline): two of them stand for the worker pool's two
    processes. ``ready`` is a barrier both pass once imported and connected, so they start together.
    """
    speedups.install()  # the SDK as the worker processes it stands for run it
    with psycopg.connect(dsn, autocommit=True) as conn:
        _run_on_sdk_alone(handlers.steps, {"steps": 5}, [], WriteEachCheckpoint(conn))  # warm
        ready.wait()
        end, done = time.perf_counter() + seconds, 0
        while time.perf_counter() < end:
            _run_on_sdk_alone(handlers.steps, {"steps": steps}, [], WriteEachCheckpoint(conn))
            done += steps
    results.put(done)


def sdk_alone(steps: int) -> tuple[float, int]:
    """B1's handler run by the SDK against ``AnswerAtOnce``: (seconds per step, checkpoint calls)."""
    elapsed, client, output = _run_on_sdk_alone(handlers.steps, {"steps": steps}, [])
    if output.get("Status") != "SUCCEEDED" or output.get("Result") != str(steps):
        raise RuntimeError(f"the SDK-alone run ended {output}")
    return elapsed / steps, client.calls


def sdk_alone_replay(step_docs: list[dict[str, Any]]) -> float:
    """Seconds the SDK alone takes to replay these completed steps of B4's handler up to its wait.

    The operations are handed over as the SDK's objects, converted beforehand: what is timed is
    the SDK's own replay, without the loading and converting an engine must also do.
    """
    operations = [invoker.operation_from_doc(doc) for doc in step_docs]
    elapsed, client, output = _run_on_sdk_alone(handlers.steps_then_wait, {"steps": len(step_docs)}, operations)
    if output.get("Status") != "PENDING":
        raise RuntimeError(f"the SDK-alone replay did not stop at the wait: {output}")
    if client.calls != 1:  # the wait's START only: any more and the SDK ran steps instead of replaying
        raise RuntimeError(f"the SDK-alone replay made {client.calls} checkpoint calls, not 1")
    return elapsed


def _run_on_sdk_alone(
    handler: Any, payload: dict[str, Any], operations: list[Any], client: AnswerAtOnce | None = None
) -> tuple[float, AnswerAtOnce, Any]:
    client = client or AnswerAtOnce()
    execution_op = {
        "Id": "bench",
        "Type": "EXECUTION",
        "Status": "STARTED",
        "StartTimestamp": 1,
        "ExecutionDetails": {"InputPayload": json.dumps(payload)},
    }
    state = InitialExecutionState([invoker.operation_from_doc(execution_op), *operations], next_marker="")
    event = DurableExecutionInvocationInputWithClient(
        durable_execution_arn="arn:bench:sdk-alone/bench",  # the execution op's id ends the ARN
        checkpoint_token="0",
        initial_execution_state=state,
        service_client=client,
    )
    start = time.perf_counter()
    output = handler(event, SimpleNamespace(aws_request_id="sdk-alone", function_name="bench"))
    return time.perf_counter() - start, client, output


B1_STEPS = 2000  # benchmarks.md
B1_BUDGET_S = 15.0


def b1_steps(ctx: BenchContext, fn: dict[str, Any], runs: int) -> int:
    """2,000 steps per run as benchmarks.md says, fewer if that would blow B1's ~15 s budget.

    A slow engine still gets a ratio; the fixed cost per invocation (~0.1 s, mostly the SDK's
    checkpoint-thread shutdown poll) is then spread over fewer steps, which the JSON records.
    """
    estimate = engine_seconds_per_step(ctx, fn, 50)
    budget = B1_BUDGET_S / (2 if ctx.quick else 1)
    return int(max(200, min(B1_STEPS, budget / (runs * estimate))) // 50 * 50)


def b1(ctx: BenchContext) -> None:
    ctx.in_process()
    fn = ctx.function("bench-steps", "bench.handlers.steps")
    rounds = 2 if ctx.quick else 3
    steps = b1_steps(ctx, fn, 2 * rounds)
    baselines.ensure_table(ctx.dsn)
    result: dict[str, Any] = {"steps": steps, "steps_spec": B1_STEPS}
    for mode in ("sync", "async"):
        ctx.database.set_synchronous_commit(mode == "sync")
        ctx.close_pools()
        ratio, own, engine_us, base_us, ideal_us = Ratio(), Ratio(), [], [], []
        for _ in range(rounds):
            base = baselines.insert_commit_loop(ctx.dsn, steps, synchronous_commit=mode == "sync") / steps
            ideal = ideal_engine_seconds_per_step(ctx.dsn, steps, synchronous_commit=mode == "sync")
            eng = engine_seconds_per_step(ctx, fn, steps)
            base_us.append(base * 1e6)
            ideal_us.append(ideal * 1e6)
            engine_us.append(eng * 1e6)
            ratio.per_round.append(eng / base)
            own.per_round.append(eng / ideal)
        result[mode] = {
            "engine_us_per_step": engine_us,
            "ideal_engine_us_per_step": ideal_us,
            "baseline_us_per_insert_commit": base_us,
            "own_ratio": own.as_dict(),
            "ratio": ratio.as_dict(),
        }
        ctx.log(
            f"B1 {mode}: engine {statistics.median(engine_us):.0f} µs/step, ideal engine "
            f"{statistics.median(ideal_us):.0f} µs, INSERT+COMMIT {statistics.median(base_us):.0f} µs: "
            f"own ratio {own.median:.2f}, raw ratio {ratio.median:.2f}"
        )
    ctx.database.set_synchronous_commit(True)
    ctx.close_pools()
    result["counters"] = step_counters(ctx, fn, 20, 120)
    sdk_alone(50)  # warm
    sdk_us = statistics.median(sdk_alone(steps)[0] * 1e6 for _ in range(rounds))
    sync_base_us = statistics.median(result["sync"]["baseline_us_per_insert_commit"])
    result["sdk_alone_us_per_step"] = sdk_us
    ctx.log(
        f"B1 reference: the SDK alone (in-memory service, no database) {sdk_us:.0f} µs/step, "
        f"{sdk_us / sync_base_us:.2f}x the sync INSERT+COMMIT"
    )
    ctx.results["B1"] = result


# --- B4: replay time ---------------------------------------------------------------------------


def capture_templates(ctx: BenchContext, fn: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run one real step so the seed clones rows the engine itself wrote (schema-proof)."""
    row = ctx.start(fn, {"steps": 1})
    ctx.run_inline(row["id"])
    with engine_db.transaction() as conn:
        op = conn.execute(
            "SELECT * FROM durable_operation WHERE execution_id = %s AND type = 'STEP'", (row["id"],)
        ).fetchone()
        assert op is not None
        events = conn.execute(
            "SELECT * FROM durable_event WHERE execution_id = %s AND op_id = %s ORDER BY event_id",
            (row["id"], op["op_id"]),
        ).fetchall()
    return dict(op), [dict(e) for e in events]


def _renamed(doc: dict[str, Any], op_id: str, name: str) -> dict[str, Any]:
    return {**doc, "Id": op_id, "Name": name}


def _copy_rows(conn: psycopg.Connection, table: str, rows: list[dict[str, Any]]) -> None:
    columns = [c for c in rows[0] if c != "id"]
    with conn.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([Jsonb(row[c]) if isinstance(row[c], dict | list) else row[c] for c in columns])


def seed_completed_steps(
    ctx: BenchContext, fn: dict[str, Any], steps: int, templates: tuple[dict[str, Any], list[dict[str, Any]]]
) -> int:
    """Create an execution whose first ``steps`` steps are already SUCCEEDED (not timed)."""
    op_template, event_templates = templates
    execution = ctx.start(fn, {"steps": steps})
    ctx.dispatcher.drain()
    ops, events = [], []
    for i, doc in enumerate(completed_step_docs(op_template, steps)):
        op_id, name, seq = doc["Id"], doc["Name"], i + 2
        ops.append(
            {
                **op_template,
                "execution_id": execution["id"],
                "op_id": op_id,
                "name": name,
                "ordinal": seq,
                "touch_seq": seq,
                "doc": doc,
            }
        )
        for k, event in enumerate(event_templates):
            events.append(
                {
                    **event,
                    "execution_id": execution["id"],
                    "op_id": op_id,
                    "invocation_seq": 1,
                    "event_id": 2 + i * len(event_templates) + k,
                    "doc": _renamed(event["doc"], op_id, name),
                }
            )
    with engine_db.transaction() as conn:
        _copy_rows(conn, "durable_operation", ops)
        _copy_rows(conn, "durable_event", events)
        conn.execute(
            "UPDATE durable_execution SET op_seq = %s, seen_seq = %s, event_seq = %s WHERE id = %s",
            (steps + 1, steps + 1, 1 + len(events), execution["id"]),
        )
    return int(execution["id"])


def replay_once(ctx: BenchContext, execution_id: int) -> dict[str, Any]:
    """Claim, replay to the first unfinished op (the wait), record the suspension; time each part."""
    with ctx.counter:
        s0, t0 = ctx.counter.snapshot(), time.perf_counter()
        ticket = claim_invocation(execution_id)
        assert ticket is not None, "seeded execution was not claimable"
        s1, t1 = ctx.counter.snapshot(), time.perf_counter()
        output, raised = invoker.call_handler(ticket)
        s2, t2 = ctx.counter.snapshot(), time.perf_counter()
        complete_invocation(ticket, output, raised)
        s3, t3 = ctx.counter.snapshot(), time.perf_counter()
    if raised is not None or (output or {}).get("Status") != "PENDING":
        raise RuntimeError(f"replay did not stop at the wait: {output or raised}")
    return {
        "replay_s": t2 - t0,
        "claim_s": t1 - t0,
        "handler_s": t2 - t1,
        "complete_s": t3 - t2,
        "statements_load": (s1 - s0).statements,
        "statements_handler": (s2 - s1).statements,
        "statements_complete": (s3 - s2).statements,
        "statements_total": (s3 - s0).statements,
    }


def b4(ctx: BenchContext) -> None:
    ctx.in_process()
    fn = ctx.function("bench-replay", "bench.handlers.steps_then_wait")
    copies = 3 if ctx.quick else 5
    templates = capture_templates(ctx, fn)
    seeded = {n: [seed_completed_steps(ctx, fn, n, templates) for _ in range(copies)] for n in (1000, 10000)}
    ctx.database.vacuum_analyze()
    ctx.close_pools()
    result: dict[str, Any] = {"copies": copies, "executions": {str(n): ids for n, ids in seeded.items()}}
    with psycopg.connect(ctx.dsn, autocommit=True) as conn:
        for n, ids in seeded.items():
            runs, base, ratio = [], [], Ratio()
            for execution_id in ids:
                base.append(baselines.select_and_load(conn, execution_id))
                runs.append(replay_once(ctx, execution_id))
                ratio.per_round.append(runs[-1]["replay_s"] / base[-1])
            result[str(n)] = {
                "runs": runs,
                "baseline_s": base,
                "ratio": ratio.as_dict(),
                "replay_s_median": statistics.median(r["replay_s"] for r in runs),
                "statements_per_replay": max(r["statements_load"] for r in runs),
            }
            ctx.log(
                f"B4 N={n}: replay {result[str(n)]['replay_s_median'] * 1e3:.1f} ms, "
                f"floor {statistics.median(base) * 1e3:.1f} ms, ratio {ratio.median:.2f}"
            )
    result["t10k_over_t1k"] = result["10000"]["replay_s_median"] / result["1000"]["replay_s_median"]
    for n in (1000, 10000):
        docs = completed_step_docs(templates[0], n)
        sdk_s = statistics.median(sdk_alone_replay(docs) for _ in range(copies))
        entry = result[str(n)]
        entry["sdk_alone_replay_s"] = sdk_s
        own = Ratio(
            [run["replay_s"] / (base + sdk_s) for run, base in zip(entry["runs"], entry["baseline_s"], strict=True)]
        )
        entry["own_ratio"] = own.as_dict()
        ctx.log(
            f"B4 N={n}: the SDK alone replays in {sdk_s * 1e3:.1f} ms; replay ÷ (bulk load + SDK-alone "
            f"replay), the ideal engine: {own.median:.2f}"
        )
    ctx.results["B4"] = result


def completed_step_docs(op_template: dict[str, Any], steps: int) -> list[dict[str, Any]]:
    """The operation documents of B4's first ``steps`` steps, SUCCEEDED, as the seed stores them."""
    ids = OperationIdNamespace()
    return [_renamed(op_template["doc"], ids.create_id_for_step(i + 1), f"s{i}") for i in range(steps)]


# --- B4b: quadratic guard ------------------------------------------------------------------------


def run_suspending(ctx: BenchContext, fn: dict[str, Any], waits: int) -> tuple[float, int]:
    """Wall time for an execution whose every op suspends, driven in-process to completion."""
    row = ctx.start(fn, {"waits": waits}, time_scale=0.0001)
    start, invocations = time.perf_counter(), 0
    owed = ctx.dispatcher.drain()
    while True:
        for execution_id in owed:
            invoker.run_invocation(execution_id)
            invocations += 1
        state = ctx.execution(row["id"])
        if state["status"] != "RUNNING":
            break
        while not (owed := ctx.dispatcher.drain()):
            if not fire_due_timers():
                time.sleep(0.0002)
    if state["status"] != "SUCCEEDED":
        raise RuntimeError(f"B4b execution ended {state['status']}")
    return time.perf_counter() - start, invocations


# benchmarks.md's sizes: 100 and 400 ops (4 = linear, 16 = quadratic). Each suspension is one
# invocation, so 500 invocations with ~85k replayed ops in all: ~6 s here, near the ~5 s budget.
B4B_SIZES = (100, 400)


def b4b(ctx: BenchContext) -> None:
    ctx.in_process()
    fn = ctx.function("bench-waits", "bench.handlers.waits", execution_timeout=MAX_EXECUTION_TIMEOUT)
    small, large = B4B_SIZES
    t_small, inv_small = run_suspending(ctx, fn, small)
    t_large, inv_large = run_suspending(ctx, fn, large)
    ctx.results["B4b"] = {
        "sizes": [small, large],
        "t_small_s": t_small,
        "t_large_s": t_large,
        "invocations": {str(small): inv_small, str(large): inv_large},
        "t_large_over_t_small": t_large / t_small,
    }
    ctx.log(f"B4b: {small} suspends {t_small:.2f} s, {large} suspends {t_large:.2f} s, ratio {t_large / t_small:.2f}")
