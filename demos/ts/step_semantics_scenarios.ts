// Seed 000's four scenarios (shared/seeds/000-step-semantics-and-retry.txt): the seed's
// experiment handler with its two commented-out options set as each scenario sets them, one export
// per scenario (Handler `step_semantics_scenarios.<export>`). Run each with Timeout 3 s: step #2's
// 10 s body never finishes in one invocation.
//   atLeastOnceRetry    scenario 1: default semantics, default retry → runs every invocation until the execution times out
//   atLeastOnceNoRetry  scenario 2: default semantics, shouldRetry false → the same: no error is ever thrown
//   atMostOnceRetry     scenario 3: AtMostOncePerRetry, default retry → the body runs every second invocation
//   atMostOnceNoRetry   scenario 4: AtMostOncePerRetry, shouldRetry false → the body runs once, then the step fails
import { withDurableExecution, StepSemantics } from '@aws/durable-execution-sdk-js';
import type { StepConfig } from '@aws/durable-execution-sdk-js';

function experiment(options: StepConfig<string>) {
  return withDurableExecution(async (event, context) => {
    console.log("Execution started.");
    await context.step('Step #1', (stepCtx) => {
      stepCtx.logger.info('Hello from step #1');
    });
    const message = await context.step('Step #2', async () => {
      context.logger.info('inside step 2');
      await new Promise(resolve => setTimeout(resolve, 10000)); // 10 seconds
      return 'Hello from Durable Lambda!';
    }, options);
    const response = {
      statusCode: 200,
      body: JSON.stringify(message),
    };
    return response;
  });
}

const noRetry = () => ({ shouldRetry: false });

export const atLeastOnceRetry = experiment({});
export const atLeastOnceNoRetry = experiment({ retryStrategy: noRetry });
export const atMostOnceRetry = experiment({ semantics: StepSemantics.AtMostOncePerRetry });
export const atMostOnceNoRetry = experiment({ semantics: StepSemantics.AtMostOncePerRetry, retryStrategy: noRetry });
