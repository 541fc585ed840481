// Durable Lab's Node.js runtime bootstrap: runs one function's unchanged durable handler, warm,
// for the Celery worker's out-of-process invoker (the protocol: RUNTIME_PROTOCOL in issue 18).
//
// Started as `node bootstrap.mjs` with cwd = the function's code directory and `_HANDLER`
// ("file.export", Lambda's form). Requests arrive as one JSON object per line on stdin;
// responses leave as one JSON object per line on file descriptor 3, so that whatever the handler
// prints on stdout or stderr stays log and never corrupts the protocol.
//
//   → fd 3: {"ready": true} | {"ready": false, "error": {...}} (then exit 1)
//   ← stdin: {"event": <DurableExecutionInvocationInput>, "context": {"awsRequestId", "functionName",
//            "deadlineMs", "tenantId"}}
//   → fd 3, while it runs: {"record": {"t": "body_start" | "body_end", ...}} (record_plugin.mjs),
//     each answered by one line on stdin before the step attempt goes on
//   → fd 3: {"output": <handler return value>} | {"error": {"errorType", "errorMessage", "stackTrace"}}
//   EOF on stdin: exit 0.

import { existsSync, writeSync } from "node:fs";
import { registerHooks } from "node:module";
import path from "node:path";
import readline from "node:readline";
import { pathToFileURL } from "node:url";

const RESPONSES_FD = 3;
// Lambda's Node runtime looks for these in this order; .ts/.mts/.cts run through Node 22's type stripping.
const EXTENSIONS = [".js", ".mjs", ".cjs", ".ts", ".mts", ".cts"];
// Bare imports the handler's own code cannot resolve fall back to the runtime's node_modules
// (.data/node, where `make install` puts the SDK), as Lambda's runtime provides the AWS SDK:
// `@aws/durable-execution-sdk-js` needs no bundling.
const RUNTIME_PARENT = new URL("../../../.data/node/package.json", import.meta.url).href;

function respond(message) {
  const data = Buffer.from(`${JSON.stringify(message)}\n`);
  let written = 0;
  while (written < data.length) {
    try {
      written += writeSync(RESPONSES_FD, data, written);
    } catch (err) {
      if (err.code !== "EAGAIN") throw err; // a full non-blocking pipe: the invoker is reading
    }
  }
}

function errorObject(err) {
  if (err instanceof Error) {
    return {
      errorType: err.name || "Error",
      errorMessage: err.message,
      stackTrace: String(err.stack || "").split("\n").slice(1).map((line) => line.trim()),
    };
  }
  return { errorType: typeof err, errorMessage: String(err), stackTrace: [] };
}

function isBare(specifier) {
  return !/^(\.{0,2}\/|[a-zA-Z][a-zA-Z0-9+.-]*:)/.test(specifier);
}

// `import { recordEffect } from "durable-lab"` in a handler: the record module, whose channel
// this process opens (record_plugin.mjs).
const DURABLE_LAB_MODULE = new URL("./record_plugin.mjs", import.meta.url).href;

registerHooks({
  resolve(specifier, context, nextResolve) {
    if (specifier === "durable-lab") return { url: DURABLE_LAB_MODULE, shortCircuit: true };
    try {
      return nextResolve(specifier, context);
    } catch (err) {
      if (err?.code !== "ERR_MODULE_NOT_FOUND" || !isBare(specifier) || context.parentURL === RUNTIME_PARENT) throw err;
      return nextResolve(specifier, { ...context, parentURL: RUNTIME_PARENT });
    }
  },
});

class LoadError extends Error {
  constructor(errorType, message, cause) {
    super(message);
    this.errorType = errorType;
    this.cause = cause;
  }
}

// "dir/file.export" → the file (with one of EXTENSIONS) in the code directory, and its export.
async function loadHandler(handlerString, root) {
  const slash = handlerString.lastIndexOf("/");
  const dot = handlerString.indexOf(".", slash + 1);
  if (!handlerString || dot <= slash + 1 || dot === handlerString.length - 1) {
    throw new LoadError("Runtime.MalformedHandlerName", `Bad handler ${JSON.stringify(handlerString)}`);
  }
  const moduleName = handlerString.slice(0, dot);
  const exportPath = handlerString.slice(dot + 1);
  const file = EXTENSIONS.map((ext) => path.resolve(root, moduleName + ext)).find((candidate) => existsSync(candidate));
  if (!file) {
    throw new LoadError("Runtime.ImportModuleError", `Error: Cannot find module '${moduleName}'`);
  }
  let module;
  try {
    module = await import(pathToFileURL(file).href);
  } catch (err) {
    const detail = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    throw new LoadError("Runtime.ImportModuleError", `Unable to import module '${moduleName}': ${detail}`, err);
  }
  let handler = module;
  for (const key of exportPath.split(".")) handler = handler?.[key];
  if (typeof handler !== "function") {
    throw new LoadError("Runtime.HandlerNotFound", `${moduleName}.${exportPath} is undefined or not exported`);
  }
  return handler;
}

// Lambda's context object: what handlers and the durable SDK read.
function lambdaContext(given) {
  const functionName = given.functionName ?? process.env.AWS_LAMBDA_FUNCTION_NAME ?? "";
  const deadlineMs = Number(given.deadlineMs);
  return {
    awsRequestId: given.awsRequestId,
    functionName,
    functionVersion: "$LATEST",
    invokedFunctionArn: `arn:aws:lambda:${process.env.AWS_REGION ?? "us-east-1"}:123456789012:function:${functionName}`,
    memoryLimitInMB: "128",
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: `durable-lab/${given.awsRequestId}`,
    tenantId: given.tenantId ?? undefined,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => (Number.isFinite(deadlineMs) ? Math.max(0, deadlineMs - Date.now()) : Infinity),
  };
}

async function invoke(handler, line) {
  let request;
  try {
    request = JSON.parse(line);
  } catch (err) {
    return { error: { errorType: "Runtime.InvalidRequest", errorMessage: `Not JSON: ${err.message}`, stackTrace: [] } };
  }
  try {
    const output = await handler(request.event, lambdaContext(request.context ?? {}));
    return { output: output === undefined ? null : output };
  } catch (err) {
    return { error: errorObject(err) };
  }
}

// An error no invocation awaited (a rejected promise nobody handles, a throw in a timer) ends the
// sandbox, as on Lambda; the invocation under way is told why before the process exits.
// Before the handler is loaded, the same is a failed start.
let phase = "loading"; // "loading" | "idle" | "busy"
function crash(errorType) {
  return (err) => {
    const error = { ...errorObject(err), errorType };
    console.error(`${errorType}: ${error.errorMessage}`);
    if (phase === "loading") respond({ ready: false, error: { ...error, errorType: "Runtime.ImportModuleError" } });
    if (phase === "busy") respond({ error });
    process.exit(1);
  };
}
process.on("uncaughtException", crash("Runtime.UncaughtException"));
process.on("unhandledRejection", crash("Runtime.UnhandledPromiseRejection"));

// Lines from stdin, one at a time, to whoever asks first: the main loop (requests) or, while an
// invocation runs, the record channel (the invoker's answer to each record).
const queued = [];
const waiting = [];
let stdinClosed = false;
function nextLine() {
  if (queued.length) return Promise.resolve(queued.shift());
  if (stdinClosed) return Promise.resolve(null);
  return new Promise((resolve) => waiting.push(resolve));
}

// The step-body record (record_plugin.mjs): one exchange at a time, as parallel branches' step
// attempts may overlap.
let recordTurn = Promise.resolve();
globalThis[Symbol.for("durable-lab.record-channel")] = {
  exchange(record) {
    const mine = recordTurn.then(async () => {
      respond({ record });
      const answer = await nextLine();
      try {
        return JSON.parse(answer ?? "{}");
      } catch {
        return {};
      }
    });
    recordTurn = mine.catch(() => {});
    return mine;
  },
};
process.env.DURABLE_EXECUTION_PLUGINS = [process.env.DURABLE_EXECUTION_PLUGINS, DURABLE_LAB_MODULE]
  .filter((name) => name?.trim())
  .join(",");

async function main() {
  const root = process.env.LAMBDA_TASK_ROOT || process.cwd();
  let handler;
  try {
    handler = await loadHandler(process.env._HANDLER ?? "", root);
  } catch (err) {
    const errorType = err instanceof LoadError ? err.errorType : "Runtime.ImportModuleError";
    const stackTrace = err instanceof LoadError && !err.cause ? [] : errorObject(err.cause ?? err).stackTrace;
    console.error(`${errorType}: ${err.message}`);
    respond({ ready: false, error: { errorType, errorMessage: err.message, stackTrace } });
    process.exit(1);
  }
  respond({ ready: true });
  phase = "idle";
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  lines.on("line", (line) => (waiting.length ? waiting.shift()(line) : queued.push(line)));
  lines.on("close", () => {
    stdinClosed = true;
    for (const resolve of waiting.splice(0)) resolve(null);
  });
  for (let line = await nextLine(); line !== null; line = await nextLine()) {
    if (!line.trim()) continue;
    phase = "busy";
    respond(await invoke(handler, line));
    phase = "idle";
  }
  process.exit(0); // EOF: whatever the handler left scheduled does not keep the sandbox alive
}

await main();
