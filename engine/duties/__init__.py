"""The service side of the durable-execution protocol: one module per duty.

Each duty is the same four beats (``unit``): a snapshot (the invocation's own view, or one read
without a lock) → the pure state machine (``engine.machine``) decides → one guarded statement, or
one transaction whose first statement is the guarded UPDATE → if another writer got there
first, read again and decide again (bounded, then a clear error). Data flows one way:
entry point (``engine.api``, ``engine.invoker``, ``engine.scheduler``) → duty → machine → store.

The duties:
    start        start an execution (one statement)
    claim        claim an invocation for a worker (one statement)
    checkpoint   apply a running invocation's checkpoint batch
    callbacks    a callback's answer and heartbeat, a plain chained invoke's outcome
    timers       fire due waits, retries, callback timeouts, re-invocations and deadlines
    stop         stop an execution at a user's request
    pause        pause, resume and delete an execution at a user's request
    end          record how an invocation ended and what happens next
    sweep        lost invocations, messages presumed lost, retention

What they share:
    unit         the unit of work, the dispatcher, the retry loop and the guarded transaction
    tokens       checkpoint tokens, ARNs and callback ids
    transition   writing a machine transition (and the chained invokes it starts)
    finish       closing an execution (and telling its parent)
    recovery     invoking again with backoff after a failed invocation, or giving up
    loops        what keeps the background loops going: quarantine and outages
"""
