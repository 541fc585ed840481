// The 'wait_for_callback' conformance suite (7-x) in TypeScript, written from each requirement's
// text with AWS's @aws/durable-execution-sdk-js; wait_for_callback.py maps requirement → export.
// The driver plays the external system that receives the callback id and answers it.
import { withDurableExecution } from "@aws/durable-execution-sdk-js";
import type { DurableContext, RetryDecision } from "@aws/durable-execution-sdk-js";

// The submitter hands the callback id to the outside world; here the driver reads it from the history.
async function submit(callbackId: string): Promise<void> {
  void callbackId;
}

// 7-1: one waitForCallback named after the input; the external success becomes the result.
export const waitForCallbackBasic = withDurableExecution(async (event: string, context: DurableContext) => {
  return await context.waitForCallback(event, submit);
});

// 7-2: the operation named "approval".
export const waitForCallbackNamed = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  return await context.waitForCallback("approval", submit);
});

// 7-3: only an inline submitter, no name.
export const waitForCallbackAnonymous = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  return await context.waitForCallback(async (callbackId) => {
    void callbackId;
  });
});

// 7-4: the external system reports a failure; nothing catches it.
export const waitForCallbackExternalFailure = withDurableExecution(async (event: string, context: DurableContext) => {
  return await context.waitForCallback(event, submit);
});

// 7-5: a 3 s timeout and no answer; nothing catches it.
export const waitForCallbackTimeout = withDurableExecution(async (event: string, context: DurableContext) => {
  return await context.waitForCallback(event, submit, { timeout: { seconds: 3 } });
});

// 7-6: the failure is caught and the handler returns "recovered".
export const waitForCallbackFailureCaught = withDurableExecution(async (event: string, context: DurableContext) => {
  try {
    return await context.waitForCallback(event, submit);
  } catch {
    return "recovered";
  }
});

// 7-7: the submitter always throws; 2 attempts 1 s apart, then the operation and the execution fail.
export const waitForCallbackSubmitterFails = withDurableExecution(async (event: string, context: DurableContext) => {
  const retryStrategy = (_error: Error, attempts: number): RetryDecision =>
    attempts < 2 ? { shouldRetry: true, delay: { seconds: 1 } } : { shouldRetry: false };
  return await context.waitForCallback(event, async () => {
    throw new Error("the approval system is unreachable");
  }, { retryStrategy });
});

// 7-8: the waitForCallback runs inside a child context named "wrapper", which returns its result.
export const waitForCallbackInChild = withDurableExecution(async (event: string, context: DurableContext) => {
  return await context.runInChildContext("wrapper", async (child) => await child.waitForCallback(event, submit));
});

// 7-9: two waitForCallback operations in a row, "first" then "second"; the second result is returned.
export const twoWaitForCallbacks = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  await context.waitForCallback("first", submit);
  return await context.waitForCallback("second", submit);
});

// 7-10: a 1 s wait, a top-level step, then the waitForCallback.
export const waitForCallbackAfterWaitAndStep = withDurableExecution(async (event: string, context: DurableContext) => {
  await context.wait({ seconds: 1 });
  await context.step(async () => ({ prepared: true }));
  return await context.waitForCallback(event, submit);
});

// 7-11: the payload is read as a JSON object instead of the default raw string; its "status" is returned.
export const waitForCallbackJsonResult = withDurableExecution(async (event: string, context: DurableContext) => {
  const decision = await context.waitForCallback<{ status: string }>(event, submit, {
    serdes: { deserialize: async (data) => (data === undefined ? undefined : JSON.parse(data)) },
  });
  return decision.status;
});

// 7-12: a 5 s heartbeat timeout and no heartbeat; nothing catches the timeout.
export const waitForCallbackHeartbeatTimeout = withDurableExecution(async (event: string, context: DurableContext) => {
  return await context.waitForCallback(event, submit, { heartbeatTimeout: { seconds: 5 } });
});

// 7-13: a 10 s heartbeat timeout; a heartbeat, then the success.
export const waitForCallbackHeartbeatThenSuccess = withDurableExecution(async (event: string, context: DurableContext) => {
  return await context.waitForCallback(event, submit, { heartbeatTimeout: { seconds: 10 } });
});

// 7-14: a 3 s timeout, caught; the handler returns "timed-out-handled".
export const waitForCallbackTimeoutCaught = withDurableExecution(async (event: string, context: DurableContext) => {
  try {
    return await context.waitForCallback(event, submit, { timeout: { seconds: 3 } });
  } catch {
    return "timed-out-handled";
  }
});

// 7-15: the success carries no payload; the empty result is returned.
export const waitForCallbackEmptyResult = withDurableExecution(async (event: string, context: DurableContext) => {
  return await context.waitForCallback(event, submit);
});
