// The 'wait' conformance suite (2-x) in TypeScript, written from each requirement's text with
// AWS's @aws/durable-execution-sdk-js; wait.py maps requirement → export.
import { withDurableExecution } from "@aws/durable-execution-sdk-js";
import type { DurableContext } from "@aws/durable-execution-sdk-js";

// 2-1: one 2 s wait.
export const waitBasic = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  await context.wait({ seconds: 2 });
});

// 2-2: the same wait, named.
export const waitNamed = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  await context.wait("custom_wait_name", { seconds: 2 });
});

// 2-3: two named waits in a row, each suspending the execution.
export const waitSequential = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  await context.wait("wait-1", { seconds: 2 });
  await context.wait("wait-2", { seconds: 2 });
  return { completedWaits: 2 };
});

// 2-4: a wait given in minutes (checkpointed as 60 s).
export const waitMinutes = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  await context.wait({ minutes: 1 });
});

// 2-5: a wait given in hours (checkpointed as 3600 s).
export const waitHours = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  await context.wait({ hours: 1 });
});
