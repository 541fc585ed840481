// AWS's JS SDK v3 (@aws-sdk/client-lambda), unchanged, against Durable Lab's AWS API: the endpoint,
// region and key come from the environment, as for any AWS client (AWS_ENDPOINT_URL_LAMBDA).
// Starts an execution by name, waits for it, reads it and its history; prints one JSON line.
const { createRequire } = require("node:module");
const load = createRequire(process.env.DURABLE_NODE_MODULES + "/");
const {
  LambdaClient, InvokeCommand, GetDurableExecutionCommand, GetDurableExecutionHistoryCommand,
  ResourceNotFoundException,
} = load("@aws-sdk/client-lambda");

async function main() {
  const lambda = new LambdaClient({});
  const started = await lambda.send(new InvokeCommand({
    FunctionName: process.argv[2],
    InvocationType: "Event",
    DurableExecutionName: process.argv[3],
    Payload: Buffer.from(JSON.stringify({ name: "from JavaScript" })),
  }));
  const arn = started.DurableExecutionArn;
  let execution;
  for (let i = 0; i < 300; i++) {
    execution = await lambda.send(new GetDurableExecutionCommand({ DurableExecutionArn: arn }));
    if (execution.Status !== "RUNNING") break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const history = await lambda.send(new GetDurableExecutionHistoryCommand({ DurableExecutionArn: arn }));
  let missing = null;
  try {
    await lambda.send(new GetDurableExecutionCommand({ DurableExecutionArn: arn.replace(/[0-9a-f]{8}-/, "00000000-") }));
  } catch (error) {
    missing = { name: error.name, isClass: error instanceof ResourceNotFoundException };
  }
  console.log(JSON.stringify({
    statusCode: started.StatusCode, arn, status: execution.Status, result: execution.Result,
    events: history.Events.map((event) => event.EventType), missing,
  }));
}

main().catch((error) => { console.error(error.name + ": " + error.message); process.exit(1); });
