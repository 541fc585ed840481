// Seed 000 ("Step semantics and retry", shared/seeds/000-step-semantics-and-retry.txt): the
// experiment's handler exactly as the seed writes it, on AWS's @aws/durable-execution-sdk-js.
// Run it as the seed does: Timeout 3 s, ExecutionTimeout 1 minute, Handler `step_semantics.handler`.
// Step #2's body runs 10 s, so every invocation that runs it is killed mid-body. This is scenario 1
// (AtLeastOncePerRetry, default retry); step_semantics_scenarios.ts has all four.
import { withDurableExecution, StepSemantics } from '@aws/durable-execution-sdk-js';
export const handler = withDurableExecution(async (event, context) => {
console.log("Execution started.");
await context.step('Step #1', (stepCtx) => {
stepCtx.logger.info('Hello from step #1');
});
const message = await context.step('Step #2', async () => {
context.logger.info('inside step 2');
await new Promise(resolve => setTimeout(resolve, 10000)); // 10 seconds
return 'Hello from Durable Lambda!';
}, {
// semantics: StepSemantics.AtMostOncePerRetry,
// retryStrategy: () => ({ shouldRetry: false })
});
const response = {
statusCode: 200,
body: JSON.stringify(message),
};
return response;
});
