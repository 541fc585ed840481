// Seed 001 ("6 best practices for Lambda Durable Functions verified with a fraud detection demo",
// shared/seeds/001-durable-functions-best-practices.txt): the demo's index.ts on AWS's
// @aws/durable-execution-sdk-js. The seed quotes the handler's steps as written (authorize with an
// idempotency key, the parallel email/SMS `waitForCallback` with `minSuccessful: 1` and one-day
// timeouts, the escalation in the catch, the finalize step); those lines are kept verbatim. What the
// seed leaves out, the transaction service `tx` and the risk scoring, is filled in here to match
// Part 1's three risk patterns and demos/fraud.py (the Python twin): low risk is authorized at
// once, high risk goes to the fraud team, medium risk asks the customer.
// Handler `fraud_detection.handler`; Timeout 120 s; ExecutionTimeout 90000 s (25 h, BP4); start it
// with `DurableExecutionName=tx-<id>` (BP2). Input: {"id": 3, "amount": 6500, "card": ..., "merchant": ...}.
import { withDurableExecution } from '@aws/durable-execution-sdk-js';
import type { DurableContext } from '@aws/durable-execution-sdk-js';

type Transaction = { id: number | string; amount: number; card?: string; merchant?: string; risk?: string };
type Answer = { approved?: boolean } | boolean | string;

const LOW_RISK_BELOW = 1000;
const HIGH_RISK_FROM = 10000;

// The services the demo calls. They log what they would do: a real payment API deduplicates on
// the idempotency key, which is what makes the steps safe to replay (BP1).
function transactionService(data: Transaction) {
  return {
    ...data,
    async authorize(tx: Transaction, final: boolean, options: { idempotency_key: string }) {
      console.log(`payment API: ${final ? 'capture' : 'authorize'} ${tx.amount} (idempotency key ${options.idempotency_key})`);
      return { authorized: true, final, amount: tx.amount, idempotencyKey: options.idempotency_key };
    },
    async sendCustomerNotification(callbackId: string, channel: 'email' | 'sms', tx: Transaction) {
      console.log(`${channel} to the holder of card ${tx.card ?? 'on file'}: did you just pay ${tx.amount} at ` +
        `${tx.merchant ?? 'a merchant'} (transaction ${tx.id})? Answer with callback ${callbackId}`);
    },
    async sendToFraud(tx: Transaction, escalated: boolean) {
      console.log(`fraud team: case for transaction ${tx.id}${escalated ? ' (escalated)' : ''}`);
      return { escalated, caseId: `fraud-${tx.id}` };
    },
  };
}

function riskOf(tx: Transaction): 'low' | 'medium' | 'high' {
  if (tx.risk === 'low' || tx.risk === 'medium' || tx.risk === 'high') return tx.risk;
  return tx.amount < LOW_RISK_BELOW ? 'low' : tx.amount >= HIGH_RISK_FROM ? 'high' : 'medium';
}

function approvedIn(answer: Answer): boolean {
  const parsed = typeof answer === 'string' ? safeParse(answer) : answer;
  return typeof parsed === 'object' && parsed !== null ? parsed.approved !== false : Boolean(parsed);
}

function safeParse(text: string): Answer {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export const handler = withDurableExecution(async (event: Transaction, context: DurableContext) => {
  const tx = transactionService({ ...event, id: event?.id ?? 0, amount: Number(event?.amount ?? 0) });
  const risk = await context.step(`score-${tx.id}`, async () => riskOf(tx));

  if (risk === 'low') {
    return await context.step(`authorize-${tx.id}`, async () =>
      tx.authorize(tx, false, { idempotency_key: `tx-${tx.id}` })
    );
  }
  if (risk === 'high') {
    return await context.step(`send-to-fraud-${tx.id}`, async () => tx.sendToFraud(tx, false));
  }

  let verified;
  try {
    verified = await context.parallel("human-verification", [
      (ctx) => ctx.waitForCallback("SendVerificationEmail",
        async (callbackId) => tx.sendCustomerNotification(callbackId, 'email', tx),
        { timeout: { days: 1 } }  // 24-hour timeout
      ),
      (ctx) => ctx.waitForCallback("SendVerificationSMS",
        async (callbackId) => tx.sendCustomerNotification(callbackId, 'sms', tx),
        { timeout: { days: 1 } }
      )
    ], { maxConcurrency: 2, completionConfig: { minSuccessful: 1 } });
  } catch (error) {
    const isTimeout = (error instanceof Error && error.message?.includes("timeout")) ||
      (typeof error === 'string' && error.includes("timeout"));
    context.logger.warn(
      isTimeout ? "Customer verification timeout" : "Customer verification failed",
      { error, txId: tx.id }
    );
    // Fallback: escalate to fraud department
    return await context.step(`timeout-escalate-${tx.id}`, async () =>
      tx.sendToFraud(tx, true)
    );
  }

  const answer = verified.succeeded()[0]?.result;
  if (answer === undefined || !approvedIn(answer)) {
    return await context.step(`escalate-${tx.id}`, async () => tx.sendToFraud(tx, true));
  }
  return await context.step(`finalize-${tx.id}`, async () => {
    return await tx.authorize(tx, true, { idempotency_key: `finalize-${tx.id}` });
  });
});
