// The 'callback' conformance suite (4-x) in TypeScript, written from each requirement's text with
// AWS's @aws/durable-execution-sdk-js; callback.py maps requirement → export. The driver plays the
// external system (success, failure or heartbeat through the Lambda API).
import { withDurableExecution } from "@aws/durable-execution-sdk-js";
import type { DurableContext } from "@aws/durable-execution-sdk-js";

// 4-1: a callback named after the input; the handler returns what the external system sent.
export const callbackBasic = withDurableExecution(async (event: string, context: DurableContext) => {
  const [result] = await context.createCallback(event);
  return await result;
});

// 4-2: a callback named "approval".
export const callbackNamed = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  const [result] = await context.createCallback("approval");
  return await result;
});

// 4-3: a 5 s timeout and nobody answers: the callback times out and the execution fails.
export const callbackTimeout = withDurableExecution(async (event: string, context: DurableContext) => {
  const [result] = await context.createCallback(event, { timeout: { seconds: 5 } });
  return await result;
});

// 4-4: a 5 s heartbeat timeout and no heartbeat: the callback times out and the execution fails.
export const callbackHeartbeatTimeout = withDurableExecution(async (event: string, context: DurableContext) => {
  const [result] = await context.createCallback(event, { heartbeatTimeout: { seconds: 5 } });
  return await result;
});

// 4-5: a 10 s heartbeat timeout; a heartbeat keeps it open until the success arrives.
export const callbackHeartbeatThenSuccess = withDurableExecution(async (event: string, context: DurableContext) => {
  const [result] = await context.createCallback(event, { heartbeatTimeout: { seconds: 10 } });
  return await result;
});

// 4-6: the external system reports a failure; the handler does not catch it.
export const callbackExternalFailure = withDurableExecution(async (event: string, context: DurableContext) => {
  const [result] = await context.createCallback(event);
  return await result;
});

// 4-7: create the callback, run a step, then await the callback, which fails.
export const callbackStepThenFailure = withDurableExecution(async (event: string, context: DurableContext) => {
  const [result] = await context.createCallback(event);
  await context.step(async () => "side work");
  return await result;
});

// 4-8: as 4-7, with a 5 s timeout and no answer.
export const callbackStepThenTimeout = withDurableExecution(async (event: string, context: DurableContext) => {
  const [result] = await context.createCallback(event, { timeout: { seconds: 5 } });
  await context.step(async () => "side work");
  return await result;
});

// 4-9: create the callback, wait 5 s (the callback succeeds meanwhile), then await it.
export const callbackDuringWaitSucceeds = withDurableExecution(async (event: string, context: DurableContext) => {
  const [result] = await context.createCallback(event);
  await context.wait({ seconds: 5 });
  return await result;
});

// 4-10: as 4-9, but the callback fails during the wait.
export const callbackDuringWaitFails = withDurableExecution(async (event: string, context: DurableContext) => {
  const [result] = await context.createCallback(event);
  await context.wait({ seconds: 5 });
  return await result;
});

// 4-11: a 3 s callback timeout and a 6 s wait: it times out during the wait.
export const callbackTimesOutDuringWait = withDurableExecution(async (event: string, context: DurableContext) => {
  const [result] = await context.createCallback(event, { timeout: { seconds: 3 } });
  await context.wait({ seconds: 6 });
  return await result;
});

// 4-12: await the callback, then a 2 s wait, then return the callback's result.
export const callbackThenWait = withDurableExecution(async (event: string, context: DurableContext) => {
  const [result] = await context.createCallback(event);
  const value = await result;
  await context.wait({ seconds: 2 });
  return value;
});

// 4-13: the callback's failure is caught and kept as a message; a 2 s wait; the message is returned.
export const callbackFailureCaughtThenWait = withDurableExecution(async (event: string, context: DurableContext) => {
  const [result] = await context.createCallback(event);
  let message: string;
  try {
    message = await result;
  } catch (error) {
    message = `callback failed: ${(error as Error).message}`;
  }
  await context.wait({ seconds: 2 });
  return message;
});

// 4-14: a 3 s timeout, caught; a 2 s wait; the message is returned.
export const callbackTimeoutCaughtThenWait = withDurableExecution(async (event: string, context: DurableContext) => {
  const [result] = await context.createCallback(event, { timeout: { seconds: 3 } });
  let message: string;
  try {
    message = await result;
  } catch (error) {
    message = `callback timed out: ${(error as Error).message}`;
  }
  await context.wait({ seconds: 2 });
  return message;
});

type Delivery = { id: string; message: string; timestamp: Date };

// 4-15: a deserializer that reads the JSON payload into a typed object with a Date; the handler
// returns it with the date as epoch seconds.
export const callbackTypedDeserializer = withDurableExecution(async (event: string, context: DurableContext) => {
  const [result] = await context.createCallback<Delivery>(event, {
    serdes: {
      deserialize: async (data) => {
        if (data === undefined) return undefined;
        const raw = JSON.parse(data) as { id: string; message: string; timestamp: string };
        return { id: raw.id, message: raw.message, timestamp: new Date(raw.timestamp) };
      },
    },
  });
  const delivery = await result;
  return {
    received: { id: delivery.id, message: delivery.message, timestamp: Math.floor(delivery.timestamp.getTime() / 1000) },
  };
});

// 4-16: a deserializer that reads the payload as a number.
export const callbackNumberDeserializer = withDurableExecution(async (event: string, context: DurableContext) => {
  const [result] = await context.createCallback<number>(event, {
    serdes: { deserialize: async (data) => (data === undefined ? undefined : Number(JSON.parse(data))) },
  });
  const count = await result;
  return { count, doubled: count * 2 };
});

// 4-17: callback A, awaited, then callback B, awaited.
export const twoCallbacksSequential = withDurableExecution(async (event: [string, string], context: DurableContext) => {
  const [a] = await context.createCallback(event[0]);
  const first = await a;
  const [b] = await context.createCallback(event[1]);
  const second = await b;
  return [first, second];
});

// 4-18: callbacks A and B both created, then A awaited, then B.
export const twoCallbacksInOrder = withDurableExecution(async (event: [string, string], context: DurableContext) => {
  const [a] = await context.createCallback(event[0]);
  const [b] = await context.createCallback(event[1]);
  const first = await a;
  const second = await b;
  return [first, second];
});

// 4-19: callbacks A and B both created, then B awaited first, then A.
export const twoCallbacksReversed = withDurableExecution(async (event: [string, string], context: DurableContext) => {
  const [a] = await context.createCallback(event[0]);
  const [b] = await context.createCallback(event[1]);
  const second = await b;
  const first = await a;
  return [first, second];
});
