// The 'parallel' conformance suite (8-x) in TypeScript, written from each requirement's text with
// AWS's @aws/durable-execution-sdk-js; parallel.py maps requirement → export. Most requirements
// run the branches one at a time (maxConcurrency 1) so that the history's order is fixed.
import { NestingType, withDurableExecution } from "@aws/durable-execution-sdk-js";
import type { BatchResult, DurableContext, Serdes } from "@aws/durable-execution-sdk-js";

type Branch = (context: DurableContext) => Promise<string>;

const succeeds = (value: string): Branch => async () => value;
const fails = (message: string): Branch => async () => {
  throw new Error(message);
};

// What the completion-config requirements return: the batch result's summary fields.
function projection(result: BatchResult<unknown>) {
  return {
    completionReason: result.completionReason,
    status: result.status,
    successCount: result.successCount,
    failureCount: result.failureCount,
    totalCount: result.totalCount,
  };
}

// 8-1: "parallel", two branches each running one step.
export const parallelBasic = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  const result = await context.parallel(
    "parallel",
    [async (branch) => await branch.step(async () => "task-1"), async (branch) => await branch.step(async () => "task-2")],
    { maxConcurrency: 1 },
  );
  return result.getResults();
});

// 8-2: the branches-only form, no name; each branch returns its value directly.
export const parallelUnnamed = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  const result = await context.parallel([succeeds("alpha"), succeeds("beta")], { maxConcurrency: 1 });
  return result.getResults();
});

// 8-3: named-branch objects "first" and "second".
export const parallelNamedBranches = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  const result = await context.parallel(
    "named",
    [
      { name: "first", func: succeeds("one") },
      { name: "second", func: succeeds("two") },
    ],
    { maxConcurrency: 1 },
  );
  return result.getResults();
});

// 8-4: branches returning a string, a number and an object.
export const parallelHeterogeneous = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  const result = await context.parallel<unknown>(
    "hetero",
    [async () => "hello", async () => 42, async () => ({ k: "v" })],
    { maxConcurrency: 1 },
  );
  return result.getResults();
});

// 8-5: no branches at all.
export const parallelEmpty = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  const result = await context.parallel<string>("empty", []);
  return result.getResults();
});

// 8-6: fail fast (no failure tolerated): branch 1 fails, branch 2 never starts.
export const parallelFailFast = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  const result = await context.parallel("failfast", [succeeds("ok"), fails("branch 1 failed"), succeeds("never")], {
    maxConcurrency: 1,
    completionConfig: { toleratedFailureCount: 0 },
  });
  return projection(result);
});

// 8-7: fail fast, then the handler asks the batch result to rethrow; the execution fails.
export const parallelThrowIfError = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  const result = await context.parallel("throwing", [fails("branch 0 failed"), succeeds("never")], {
    maxConcurrency: 1,
    completionConfig: { toleratedFailureCount: 0 },
  });
  result.throwIfError();
  return result.getResults();
});

// 8-8: two successes are enough; branches 2 and 3 never start.
export const parallelMinSuccessful = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  const result = await context.parallel("min-successful", [succeeds("a"), succeeds("b"), succeeds("c"), succeeds("d")], {
    maxConcurrency: 1,
    completionConfig: { minSuccessful: 2 },
  });
  return { completionReason: result.completionReason, successCount: result.successCount, totalCount: result.totalCount };
});

// 8-9: one failure tolerated, one happens: every branch runs.
export const parallelToleratedFailure = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  const result = await context.parallel("tolerated", [succeeds("a"), fails("branch 1 failed"), succeeds("c")], {
    maxConcurrency: 1,
    completionConfig: { toleratedFailureCount: 1 },
  });
  return projection(result);
});

// 8-10: one failure tolerated, two happen: branch 2 never starts.
export const parallelToleranceExceeded = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  const result = await context.parallel(
    "tolerated-exceeded",
    [fails("branch 0 failed"), fails("branch 1 failed"), succeeds("never")],
    { maxConcurrency: 1, completionConfig: { toleratedFailureCount: 1 } },
  );
  const { completionReason, successCount, failureCount, totalCount } = projection(result);
  return { completionReason, successCount, failureCount, totalCount };
});

// 8-11: two branches at a time; the results still come back in branch order.
export const parallelConcurrent = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  const result = await context.parallel("concurrent", [succeeds("r0"), succeeds("r1"), succeeds("r2")], {
    maxConcurrency: 2,
  });
  return result.getResults();
});

// 8-12: FLAT nesting: no context per branch, the branches' steps sit under the parallel itself.
export const parallelFlat = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  const result = await context.parallel(
    "flat",
    [async (branch) => await branch.step(async () => "fa"), async (branch) => await branch.step(async () => "fb")],
    { maxConcurrency: 1, nesting: NestingType.FLAT },
  );
  return result.getResults();
});

// 8-13: 25 % of the four branches may fail; two fail (50 %), so the rest never start.
export const parallelToleratedPercentage = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  const result = await context.parallel(
    "tolerated-pct",
    [fails("branch 0 failed"), fails("branch 1 failed"), succeeds("c"), succeeds("d")],
    { maxConcurrency: 1, completionConfig: { toleratedFailurePercentage: 25 } },
  );
  const { completionReason, successCount, failureCount, totalCount } = projection(result);
  return { completionReason, successCount, failureCount, totalCount };
});

// 8-14: branch 1 suspends on a 2 s wait; on replay branch 0's result comes from its checkpoint.
export const parallelReplay = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  const result = await context.parallel(
    "replay",
    [
      async (branch) => await branch.step(async () => "b0"),
      async (branch) => {
        await branch.wait({ seconds: 2 });
        return "b1";
      },
    ],
    { maxConcurrency: 1 },
  );
  return result.getResults();
});

// Checkpoints each branch result as {"wrapped": value} and reads it back unwrapped (8-15).
const wrapping: Serdes<string> = {
  serialize: async (value) => JSON.stringify({ wrapped: value }),
  deserialize: async (data) => (data === undefined ? undefined : (JSON.parse(data) as { wrapped: string }).wrapped),
};

// 8-15: a custom per-branch serdes.
export const parallelItemSerdes = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  const result = await context.parallel("serde", [succeeds("x"), succeeds("y")], {
    maxConcurrency: 1,
    itemSerdes: wrapping,
  });
  return result.getResults();
});

// 8-16: every branch fails, all within the tolerance of three.
export const parallelAllFail = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  const result = await context.parallel("all-fail", [fails("b0 failed"), fails("b1 failed"), fails("b2 failed")], {
    maxConcurrency: 1,
    completionConfig: { toleratedFailureCount: 3 },
  });
  return projection(result);
});

// 8-17: three successes wanted, only two happen; no tolerance is set, so every branch runs.
export const parallelMinNotReached = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  const result = await context.parallel("min-not-reached", [succeeds("a"), fails("branch 1 failed"), succeeds("c")], {
    maxConcurrency: 1,
    completionConfig: { minSuccessful: 3 },
  });
  return projection(result);
});

// 8-18: three successes wanted and one failure tolerated; two failures come first and stop it.
export const parallelCombinedCompletion = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  const result = await context.parallel(
    "combined",
    [fails("branch 0 failed"), fails("branch 1 failed"), succeeds("c"), succeeds("d")],
    { maxConcurrency: 1, completionConfig: { minSuccessful: 3, toleratedFailureCount: 1 } },
  );
  const { completionReason, successCount, failureCount, totalCount } = projection(result);
  return { completionReason, successCount, failureCount, totalCount };
});

// 8-19: maxConcurrency 0 is refused before any branch runs; the execution fails.
export const parallelBadConcurrency = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  const result = await context.parallel("bad-concurrency", [succeeds("a"), succeeds("b")], { maxConcurrency: 0 });
  return result.getResults();
});

// 8-20: the batch result's accessors after two successes and a tolerated failure.
export const parallelAccessors = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  const result = await context.parallel("accessors", [succeeds("a"), fails("branch 1 failed"), succeeds("c")], {
    maxConcurrency: 1,
    completionConfig: { toleratedFailureCount: 1 },
  });
  return {
    hasFailure: result.hasFailure,
    successCount: result.succeeded().length,
    failureCount: result.failed().length,
    errorCount: result.getErrors().length,
  };
});

// 8-21: the single outer branch runs an inner parallel of two steps.
export const parallelNested = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  const outer = await context.parallel(
    "outer",
    [
      async (branch) => {
        const inner = await branch.parallel(
          "inner",
          [async (b) => await b.step(async () => "i1"), async (b) => await b.step(async () => "i2")],
          { maxConcurrency: 1 },
        );
        return inner.getResults();
      },
    ],
    { maxConcurrency: 1 },
  );
  return outer.getResults();
});

// 8-22: 25 % tolerated and exactly 25 % fail: not exceeded, so all four branches run.
export const parallelPercentageBoundary = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  const result = await context.parallel(
    "pct-boundary",
    [fails("branch 0 failed"), succeeds("b"), succeeds("c"), succeeds("d")],
    { maxConcurrency: 1, completionConfig: { toleratedFailurePercentage: 25 } },
  );
  return projection(result);
});
