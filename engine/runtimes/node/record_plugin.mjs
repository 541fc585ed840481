// Durable Lab's record of step bodies in a Node runtime process. bootstrap.mjs names this file in
// DURABLE_EXECUTION_PLUGINS, and the JS SDK loads it as an instrumentation plugin. Each step
// body's start and end goes to the invoker as {"record": {...}} on the answer pipe, and the body
// waits for the invoker's line on stdin: the invoker writes the record to the invocation's
// journal, or kills this process instead if an armed fault is due there.
//
// The body is wrapped (wrapOperationAttemptFn) rather than observed through the attempt hooks: the
// SDK calls onOperationAttemptEnd only after the step's result is checkpointed, and a fault armed
// "after the body" must strike before that checkpoint, as it does in the worker.

//
// A handler counts a side effect as an in-worker handler does with engine.effects.record:
//   import { recordEffect } from "durable-lab";
//   await recordEffect("payment", orderId, idempotencyKey); // { performed, duplicate, idempotency_key_used }

const CHANNEL = Symbol.for("durable-lab.record-channel"); // set by bootstrap.mjs

export async function recordEffect(kind, key, idempotencyKey = null) {
  const channel = globalThis[CHANNEL];
  if (!channel) throw new Error("recordEffect() must be called inside a handler Durable Lab runs");
  const answer = await channel.exchange({ t: "effect", kind, key, idempotency_key: idempotencyKey });
  if (!answer?.effect) throw new Error(answer?.error ?? "the invoker did not record the effect");
  return answer.effect;
}

function exchange(record) {
  return globalThis[CHANNEL]?.exchange(record);
}

class RecordPlugin {
  wrapOperationAttemptFn(info, fn) {
    if (info.type !== "STEP") return fn();
    const step = { op_id: info.id, name: info.name ?? null };
    return (async () => {
      await exchange({ t: "body_start", ...step, attempt: info.attempt ?? 1 });
      let result;
      try {
        result = await fn();
      } catch (err) {
        await exchange({ t: "body_end", ...step, outcome: "failed" });
        throw err;
      }
      await exchange({ t: "body_end", ...step, outcome: "succeeded" });
      return result;
    })();
  }
}

export const durableExecutionPluginProvider = {
  pluginApiVersion: 1,
  pluginType: RecordPlugin,
  createPlugin: () => new RecordPlugin(),
};
