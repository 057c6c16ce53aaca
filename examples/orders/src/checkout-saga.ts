/**
 * Checkout as an orchestrated saga: reserve stock, charge (card, with an invoice fallback), ship. A failing step
 * undoes the completed ones in reverse order. Runs on the in-memory saga store (the embedded default); swap in
 * `createPostgresSagaStore` / `createMysqlSagaStore` / `createSqliteSagaStore` for persistence and recovery.
 */
import { createInMemorySagaStore } from '@cqrs-ts/core';
import { createSagaRunner, defineSaga, SagaFailedError, sagaContext } from '@cqrs-ts/saga';

type Checkout = { orderId: string; sku: string; amount: number; address: string };
const Ctx = sagaContext<Checkout>();

/** Runs one checkout that completes and one that is rolled back; returns what happened, for the demo and test. */
export async function runCheckoutSagas(log: (line: string) => void = () => {}) {
  const stock = new Map<string, number>([['MUG-3', 5]]);
  const charges = new Map<string, number>();
  const Checkout = defineSaga({
    name: 'orders.checkout',
    version: 1,
    context: Ctx,
    steps: [
      Ctx.step({
        id: 'reserve-stock',
        act: (ctx) => {
          const left = stock.get(ctx.sku) ?? 0;
          if (left < 1) throw new Error(`${ctx.sku} is out of stock`);
          stock.set(ctx.sku, left - 1);
          return { sku: ctx.sku };
        },
        compensate: (_ctx, r) => {
          stock.set(r.sku, (stock.get(r.sku) ?? 0) + 1);
        },
      }),
      Ctx.step({
        id: 'charge-card',
        retry: { maxAttempts: 2, backoff: { initialMs: 1 } },
        act: (ctx) => {
          if (ctx.amount > 1000) throw new Error('card declined');
          charges.set(ctx.orderId, ctx.amount);
          return { method: 'card' as string };
        },
        compensate: (ctx) => {
          charges.delete(ctx.orderId);
        },
        fallback: {
          id: 'charge-invoice',
          act: (ctx) => {
            charges.set(ctx.orderId, ctx.amount);
            return { method: 'invoice' as string };
          },
          compensate: (ctx) => {
            charges.delete(ctx.orderId);
          },
        },
      }),
      Ctx.step({
        id: 'ship',
        act: (ctx) => {
          if (ctx.address === '') throw new Error('no shipping address');
          return { trackingId: `trk-${ctx.orderId}` };
        },
      }),
    ],
  });
  const runner = createSagaRunner({ store: createInMemorySagaStore(), sagas: [Checkout] });

  for await (const update of runner.start(Checkout, {
    orderId: 'o-1',
    sku: 'MUG-3',
    amount: 2500,
    address: 'Main St 1',
  })) {
    if (update.action === 'act')
      log(`saga o-1: ${update.step} done by ${update.ran} → ${JSON.stringify(update.result)}`);
  }
  let rolledBack = '';
  try {
    await runner.run(Checkout, { orderId: 'o-2', sku: 'MUG-3', amount: 10, address: '' });
  } catch (error) {
    if (!(error instanceof SagaFailedError)) throw error;
    rolledBack = error.status;
    log(`saga o-2: ${error.stepId} failed (${(error.cause as Error).message}) → ${error.status}`);
  }
  log(
    `stock of MUG-3: ${stock.get('MUG-3')} (one reserved by o-1, o-2's reservation released); charges: ${JSON.stringify([...charges])}`,
  );
  return { stock: stock.get('MUG-3'), charges: [...charges], rolledBack };
}
