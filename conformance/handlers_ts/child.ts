// The 'child' conformance suite (3-x) in TypeScript, written from each requirement's text with
// AWS's @aws/durable-execution-sdk-js; child.py maps requirement → export.
import { createRetryStrategy, JitterStrategy, retryPresets, withDurableExecution } from "@aws/durable-execution-sdk-js";
import type { DurableContext, Serdes } from "@aws/durable-execution-sdk-js";
import { createHash } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

const noRetry = { retryStrategy: retryPresets.noRetry };
// How long a step waits before the process dies, so that its START checkpoint has gone out (3-12).
const CHECKPOINT_FLUSH_MS = 1000;

// 3-1: a child context holding one step that returns the input.
export const childBasic = withDurableExecution(async (event: string, context: DurableContext) => {
  return await context.runInChildContext(async (child) => await child.step(async () => event));
});

type NameAndValue = { name: string; value: string };

// 3-2: the child context is named after the input's first string; its step returns the second.
export const childNamed = withDurableExecution(async (event: NameAndValue, context: DurableContext) => {
  return await context.runInChildContext(event.name, async (child) => await child.step(async () => event.value));
});

// 3-3: two steps in a child context, the second taking the first one's result.
export const childSequentialSteps = withDurableExecution(async (event: string, context: DurableContext) => {
  return await context.runInChildContext("sequential", async (child) => {
    const first = await child.step(async () => event);
    return await child.step(async () => first);
  });
});

// 3-4: the child's step fails with no retry; nothing catches it, so the execution fails.
export const childError = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  return await context.runInChildContext("failing-child", async (child) => {
    return await child.step(async (): Promise<string> => {
      throw new Error("step failed inside the child");
    }, noRetry);
  });
});

// 3-5: the child's failure is caught in the parent, then a recovery step returns the input.
export const childErrorCaught = withDurableExecution(async (event: string, context: DurableContext) => {
  try {
    await context.runInChildContext(async (child) => {
      return await child.step(async (): Promise<string> => {
        throw new Error("step failed inside the child");
      }, noRetry);
    });
  } catch {
    // Recovered below.
  }
  return await context.step(async () => event);
});

// 3-6: an outer child context with a step and an inner child context with its own step.
export const childNested = withDurableExecution(async (event: string, context: DurableContext) => {
  return await context.runInChildContext("outer", async (outer) => {
    await outer.step(async () => event);
    return await outer.runInChildContext("inner", async (inner) => await inner.step(async () => event));
  });
});

const everySecond = (maxAttempts: number) =>
  createRetryStrategy({ maxAttempts, initialDelay: { seconds: 1 }, backoffRate: 1, jitter: JitterStrategy.NONE });

// 3-7: the child's step fails on attempt 1 and is retried; attempt 2 returns the input.
export const childStepRetry = withDurableExecution(async (event: string, context: DurableContext) => {
  return await context.runInChildContext("retrying-child", async (child) => {
    return await child.step(async (step) => {
      if (step.attempt === 1) throw new Error("first attempt fails");
      return event;
    }, { retryStrategy: everySecond(2) });
  });
});

// 3-8: the child's step always fails; after 2 attempts the child, then the execution, fail.
export const childRetryExhausted = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  return await context.runInChildContext("exhausted-child", async (child) => {
    return await child.step(async (step): Promise<string> => {
      throw new Error(`attempt ${step.attempt} fails`);
    }, { retryStrategy: everySecond(2) });
  });
});

// 3-9: a child context, then a wait; on replay the child returns its checkpointed result.
export const childReplayCached = withDurableExecution(async (event: string, context: DurableContext) => {
  const result = await context.runInChildContext(async (child) => await child.step(async () => event));
  await context.wait({ seconds: 1 });
  return result;
});

// 3-10: a step and a wait inside a child context.
export const childStepAndWait = withDurableExecution(async (event: string, context: DurableContext) => {
  return await context.runInChildContext("step-and-wait", async (child) => {
    const value = await child.step(async () => event);
    await child.wait({ seconds: 1 });
    return value;
  });
});

// 3-11: the child logs its input, runs a small step, and builds a result over the 256 KB
// checkpoint limit, so it is checkpointed in ReplayChildren mode and re-run on replay. Replay
// logging is on, so that re-run logs again.
export const childLargePayload = withDurableExecution(async (event: string, context: DurableContext) => {
  const large = await context.runInChildContext("large-result", async (child) => {
    child.configureLogger({ modeAware: false }); // a context's own setting: children do not inherit it
    child.logger.info(`building a large result for ${event}`);
    const seed = await child.step(async () => event.slice(0, 4));
    return seed.repeat(80_000); // 320 kB serialized
  });
  await context.wait({ seconds: 1 });
  return { length: large.length };
});

// Whether this execution's process has crashed once already. The step's attempt number cannot
// tell (an interrupted step is still on attempt 1) and the JS SDK does not expose whether it is
// replaying, so the first crash is recorded outside, as a handler would in a table: a marker
// file per execution, created atomically.
function crashMarker(executionArn: string): string {
  return path.join(os.tmpdir(), `durable-lab-crashed-${createHash("sha256").update(executionArn).digest("hex")}`);
}

function firstCrash(executionArn: string): boolean {
  try {
    writeFileSync(crashMarker(executionArn), "", { flag: "wx" });
    return true;
  } catch {
    return false;
  }
}

// 3-12: the Lambda dies inside the child's step after the child's and the step's START went
// out; the next invocation runs the step again (no second START) and it succeeds.
export const childInterrupted = withDurableExecution(async (event: string, context: DurableContext) => {
  const arn = context.executionContext.durableExecutionArn;
  const result = await context.runInChildContext(async (child) => {
    return await child.step(async () => {
      if (firstCrash(arn)) {
        await new Promise((resolve) => setTimeout(resolve, CHECKPOINT_FLUSH_MS));
        process.exit(1);
      }
      return event;
    });
  });
  rmSync(crashMarker(arn), { force: true });
  return result;
});

// 3-13: a child context holding only a wait, then a step outside it.
export const childWaitOnly = withDurableExecution(async (event: string, context: DurableContext) => {
  await context.runInChildContext("wait-only", async (child) => {
    await child.wait({ seconds: 1 });
    return event;
  });
  return await context.step(async () => event);
});

// Checkpoints a string upper-cased and as it is, not as JSON (3-14).
const uppercaseText: Serdes<string> = {
  serialize: async (value) => (value === undefined ? undefined : value.toUpperCase()),
  deserialize: async (data) => data,
};

// 3-14: the child context's own serdes upper-cases its result.
export const childCustomSerdes = withDurableExecution(async (event: string, context: DurableContext) => {
  return await context.runInChildContext("uppercase", async (child) => await child.step(async () => event), {
    serdes: uppercaseText,
  });
});

// 3-15: the child body throws without any durable operation; the execution fails.
export const childErrorDirect = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  return await context.runInChildContext("throws-directly", async (): Promise<string> => {
    throw new Error("thrown in the child body");
  });
});

// 3-16: the child body returns null without any durable operation.
export const childReturnsNull = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  return await context.runInChildContext("returns-null", async () => null);
});

// 3-17: the child only logs and returns the input, then a wait; replay logging is on, and the
// completed child is not run again, so the line is logged once.
export const childLoggerOnly = withDurableExecution(async (event: string, context: DurableContext) => {
  const result = await context.runInChildContext("logs-only", async (child) => {
    child.configureLogger({ modeAware: false });
    child.logger.info(`child body ran for ${event}`);
    return event;
  });
  await context.wait({ seconds: 1 });
  return result;
});

// 3-18: a step and a wait inside a child context, then a step and a wait after it.
export const childMixedReplays = withDurableExecution(async (event: string, context: DurableContext) => {
  const inner = await context.runInChildContext("inner-work", async (child) => {
    const value = await child.step(async () => event);
    await child.wait({ seconds: 1 });
    return value;
  });
  const outer = await context.step(async () => inner);
  await context.wait({ seconds: 1 });
  return outer;
});
