// biome-ignore-all lint/suspicious/noConsole: an example prints what it does
/**
 * The README's outage example: a refund that fails while the payment service is down is retried by the pass,
 * handed to recovery with a retry time, and completed by a recovery worker once the service is back; nobody
 * resumes it. Run it with `npx node --conditions=@cqrs-ts/source packages/saga/examples/keep-compensating.ts`.
 * The README shows the part between `#region readme` and `#endregion` (a test checks they match).
 */
import { createInMemorySagaStore } from '@cqrs-ts/core';
import { createSagaRunner, defineSaga, type SagaFailedError, sagaContext } from '@cqrs-ts/saga';

/** A stand-in payment service, idempotent per key, that is down until `up()`. */
function paymentService() {
  let down = true;
  const refunded = new Set<string>();
  return {
    refunded,
    up: () => {
      down = false;
    },
    async refund(key: string, options: { signal: AbortSignal }): Promise<void> {
      options.signal.throwIfAborted();
      if (down) throw new Error('connect ECONNREFUSED 127.0.0.1:8443');
      refunded.add(key);
    },
  };
}

export async function main(): Promise<{
  firstPass: string;
  retried: boolean;
  refunds: number;
  health: unknown;
}> {
  const payments = paymentService();
  // #region readme
  const Order = sagaContext<{ orderId: string; amount: number }>();
  const ChargeThenShip = defineSaga({
    name: 'charge-then-ship',
    context: Order,
    steps: [
      Order.step({
        id: 'charge',
        act: (ctx) => ({ paymentId: `pay-${ctx.orderId}` }),
        // Idempotent per key, bounded per attempt, and it honours the signal (a lost lease aborts it).
        compensate: (_ctx, _r, tools) => payments.refund(tools.idempotencyKey(), { signal: tools.signal }),
        compensationTimeoutMs: 5_000,
      }),
      Order.step({
        id: 'ship',
        act: () => {
          throw new Error('the warehouse refused the order');
        },
      }),
    ],
  });

  const runner = createSagaRunner({
    store: createInMemorySagaStore(),
    sagas: [ChargeThenShip],
    // Short for the example; the defaults are { retryForMs: 10_000, coolDownMs: 30_000, budgetMs: 24 h }.
    compensation: { backoff: { initialMs: 20 }, retryForMs: 200, coolDownMs: 300, budgetMs: 60_000 },
  });

  // The refund fails for the whole first pass: the saga is stored `compensation_failed` with a retry time.
  const failed = (await runner
    .run(ChargeThenShip, { orderId: 'o-1', amount: 30 })
    .catch((e) => e)) as SagaFailedError;
  console.log(failed.status, new Date(failed.retryAt!).toISOString()); // compensation_failed, in ~300 ms

  payments.up(); // the payment service comes back

  // A recovery worker: a pass every 100 ms takes the saga again once its cool-down is over.
  while ((await runner.health()).retrying > 0) {
    await runner.recover();
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const health = await runner.health();
  console.log(health); // { needsOperator: 0, retrying: 0, active: 0 }
  // #endregion readme
  return {
    firstPass: failed.status,
    retried: failed.retryAt !== undefined,
    refunds: payments.refunded.size,
    health,
  };
}

if (import.meta.main) await main();
