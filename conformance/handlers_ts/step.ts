// The 'step' conformance suite (1-x) in TypeScript, written from each requirement's text as a
// user of AWS's @aws/durable-execution-sdk-js would write it; step.py maps requirement → export.
import {
  createRetryStrategy,
  JitterStrategy,
  retryPresets,
  StepSemantics,
  withDurableExecution,
} from "@aws/durable-execution-sdk-js";
import type { DurableContext, RetryDecision, Serdes, StepConfig, StepFunc } from "@aws/durable-execution-sdk-js";

const noRetry = { retryStrategy: retryPresets.noRetry };

// A retry every second with no jitter, so the history shows NextAttemptDelaySeconds = 1.
function everySecond(maxAttempts: number): StepConfig<unknown>["retryStrategy"] {
  return createRetryStrategy({ maxAttempts, initialDelay: { seconds: 1 }, backoffRate: 1, jitter: JitterStrategy.NONE });
}

// 1-15 and 1-16 single this failure out by its type.
class TransientError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TransientError";
  }
}

// 1-1: a single step that takes the input and returns a greeting.
export const stepBasic = withDurableExecution(async (event: string, context: DurableContext) => {
  return await context.step(async () => `Hello, ${event}!`);
});

// 1-2: the same step with an explicit name.
export const stepNamed = withDurableExecution(async (event: string, context: DurableContext) => {
  return await context.step("custom_step_name", async () => `Hello, ${event}!`);
});

// 1-3: the second step uses the first one's result.
export const stepSequential = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  const first = await context.step(async () => "first");
  return await context.step(async () => `${first}_second`);
});

type Profile = { name: string; tags: string[] };

// 1-4: a step returning a nested object with arrays and mixed types.
export const stepComplexResult = withDurableExecution(async (event: Profile, context: DurableContext) => {
  return await context.step(async () => ({ user: { name: event.name, tags: [...event.tags] }, count: event.tags.length }));
});

// 1-5: a step that returns nothing.
export const stepUndefinedResult = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  return await context.step(async () => undefined);
});

function upperStrings(value: unknown): unknown {
  if (typeof value === "string") return value.toUpperCase();
  if (Array.isArray(value)) return value.map(upperStrings);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, upperStrings(item)]));
  }
  return value;
}

// Upper-cases every string value on serialization (1-6).
const uppercaseSerdes: Serdes<unknown> = {
  serialize: async (value) => (value === undefined ? undefined : JSON.stringify(upperStrings(value))),
  deserialize: async (data) => (data === undefined ? undefined : JSON.parse(data)),
};

// 1-6: the step's own serdes upper-cases what it checkpoints; the step returns what the serdes gives back.
export const stepCustomSerdes = withDurableExecution(async (event: string, context: DurableContext) => {
  return await context.step(async () => event, { serdes: uppercaseSerdes });
});

// 1-7: the step logs through its context's logger.
export const stepWithLogger = withDurableExecution(async (event: string, context: DurableContext) => {
  return await context.step(async (step) => {
    step.logger.info(`Greeting step started for: ${event}`);
    const greeting = `Hello, ${event}!`;
    step.logger.info(`Greeting step completed with: ${greeting}`);
    return greeting;
  });
});

// 1-8: a step, then a 2 s wait; the replay skips the step.
export const stepThenWait = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  const result = await context.step(async () => "computed");
  await context.wait({ seconds: 2 });
  return result;
});

// 1-9: on replay the step returns its checkpointed result without running.
export const replaySkipsSucceededStep = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  const result = await context.step(async (step) => {
    step.logger.info("step executed");
    return "cached_value";
  });
  await context.wait({ seconds: 1 });
  return result;
});

// 1-10: a step failing for good inside try/catch, then a wait; the replay re-throws the stored error.
export const replayRethrowsFailedStep = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  try {
    await context.step(async (step): Promise<string> => {
      step.logger.info("step executed");
      throw new Error("permanent failure");
    }, noRetry);
  } catch {
    // The stored error, thrown again on replay without running the step.
  }
  await context.wait({ seconds: 1 });
  return "caught";
});

// Fails on its first `failures` attempts (the step's attempt number is durable: no outside store).
function unreliable(failures: number): StepFunc<string> {
  return async (step) => {
    if (step.attempt <= failures) throw new Error(`attempt ${step.attempt} failed`);
    return "Operation succeeded";
  };
}

// 1-11: fails once, retried after 1 s, succeeds on attempt 2.
export const retryThenSucceed = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  return await context.step(unreliable(1), { retryStrategy: everySecond(3) });
});

// 1-12: four attempts in all, every one fails, so the execution fails.
export const retryExhaustion = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  return await context.step(async (step): Promise<string> => {
    throw new Error(`attempt ${step.attempt} always fails`);
  }, { retryStrategy: everySecond(4) });
});

// 1-13: no retry configuration, so the SDK's default strategy applies; succeeds on attempt 3.
export const defaultRetryStrategy = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  return await context.step(unreliable(2));
});

// 1-14: 2 s initial delay, 3x backoff, no jitter: the retries wait 2 s, then 6 s.
export const customBackoff = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  const retryStrategy = createRetryStrategy({
    maxAttempts: 5,
    initialDelay: { seconds: 2 },
    backoffRate: 3,
    jitter: JitterStrategy.NONE,
  });
  return await context.step(unreliable(2), { retryStrategy });
});

// 1-15: the strategy retries TransientError only; the first attempt throws one.
export const retryOnTransient = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  const retryStrategy = (error: Error, attempts: number): RetryDecision =>
    error instanceof TransientError && attempts < 3 ? { shouldRetry: true, delay: { seconds: 1 } } : { shouldRetry: false };
  return await context.step(async (step) => {
    if (step.attempt === 1) throw new TransientError("temporary outage");
    return "recovered";
  }, { retryStrategy });
});

// 1-16: the strategy refuses TransientError, so the step fails at once.
export const noRetryOnTransient = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  const retryStrategy = (error: Error): RetryDecision =>
    error instanceof TransientError ? { shouldRetry: false } : { shouldRetry: true, delay: { seconds: 1 } };
  return await context.step(async (): Promise<string> => {
    throw new TransientError("transient but not retried");
  }, { retryStrategy });
});

// The step of 1-17 and 1-18: logs its input, then the Lambda crashes on the first attempt.
function crashOnFirstAttempt(input: string): StepFunc<string> {
  return async (step) => {
    step.logger.info(`Executing step with input: ${input}`);
    if (step.attempt === 1) process.exit(1);
    return "succeeded on second attempt";
  };
}

// 1-17: AtMostOncePerRetry and no retry: the replay finds the step interrupted and fails it.
export const atMostOnceNoRetry = withDurableExecution(async (event: string, context: DurableContext) => {
  return await context.step("at_most_once_flaky_step", crashOnFirstAttempt(event), {
    semantics: StepSemantics.AtMostOncePerRetry,
    retryStrategy: retryPresets.noRetry,
  });
});

// 1-18: AtMostOncePerRetry with retries: the interruption is retried and attempt 2 succeeds.
export const atMostOnceWithRetry = withDurableExecution(async (event: string, context: DurableContext) => {
  return await context.step(crashOnFirstAttempt(event), {
    semantics: StepSemantics.AtMostOncePerRetry,
    retryStrategy: everySecond(3),
  });
});

// 1-19: a step that always throws, with no retries: the execution fails.
export const failsPermanently = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  return await context.step(async (): Promise<string> => {
    throw new Error("step failed");
  }, noRetry);
});

// 1-20: the failed step's error is caught and a second step supplies a fallback.
export const errorCaught = withDurableExecution(async (_event: unknown, context: DurableContext) => {
  try {
    return await context.step(async (): Promise<string> => {
      throw new Error("step failed");
    }, noRetry);
  } catch {
    return await context.step(async () => "fallback_result");
  }
});
