// biome-ignore-all lint/suspicious/noConsole: an example prints what it does
/**
 * The README example: an order saga (reserve inventory, charge payment, ship) with a compensation per step, a
 * fallback for the payment guarded by a circuit breaker, and crash recovery. Run it with
 * `npx node --conditions=@cqrs-ts/source packages/saga/examples/place-order.ts`.
 */
// #region readme
import { createInMemorySagaStore } from '@cqrs-ts/core';
import {
  createCircuitBreaker,
  createSagaRunner,
  defineSaga,
  SagaFailedError,
  sagaContext,
  sagaSequenceDiagram,
} from '@cqrs-ts/saga';

// Stand-ins for real services; each call is idempotent per key, as steps must be.
const inventory = new Map<string, string>(); // reservation key -> sku
const payments = new Map<string, number>(); // payment key -> amount
const shipments: string[] = [];

type OrderContext = { orderId: string; sku: string; amount: number; address: string };
const Order = sagaContext<OrderContext>();

export const PlaceOrder = defineSaga({
  name: 'place-order',
  version: 1,
  context: Order,
  deadlineMs: 60_000,
  steps: [
    Order.step({
      id: 'reserve-inventory',
      act: (ctx, tools) => {
        const reservationId = tools.idempotencyKey();
        inventory.set(reservationId, ctx.sku);
        return { reservationId };
      },
      compensate: (_ctx, { reservationId }) => {
        inventory.delete(reservationId);
      },
    }),
    Order.step({
      id: 'charge-card',
      retry: { maxAttempts: 3, backoff: { initialMs: 10 } },
      timeoutMs: 2_000,
      circuitBreaker: true,
      act: async (ctx): Promise<{ paymentId: string; method: string }> => {
        if (ctx.amount > 1_000) throw new Error('card gateway unavailable');
        return { paymentId: `card-${ctx.orderId}`, method: 'card' };
      },
      compensate: (_ctx, { paymentId }) => {
        payments.delete(paymentId);
      },
      fallback: {
        id: 'charge-invoice',
        act: (ctx, tools) => {
          const paymentId = tools.idempotencyKey();
          payments.set(paymentId, ctx.amount);
          return { paymentId, method: 'invoice' };
        },
        compensate: (_ctx, { paymentId }) => {
          payments.delete(paymentId);
        },
      },
    }),
    Order.step({
      id: 'ship',
      act: (ctx) => {
        if (ctx.address === '') throw new Error('no shipping address');
        shipments.push(ctx.orderId);
        return { trackingId: `trk-${ctx.orderId}` };
      },
    }),
  ],
});

export async function main(): Promise<{ shipped: string[]; failedStatus: string; reservations: number }> {
  const store = createInMemorySagaStore();
  const runner = createSagaRunner({
    store,
    sagas: [PlaceOrder],
    breaker: createCircuitBreaker({ failMax: 5, resetTimeoutMs: 30_000 }),
  });

  // Stream the step results as they are recorded.
  for await (const update of runner.start(PlaceOrder, {
    orderId: 'o-1',
    sku: 'book',
    amount: 25,
    address: 'Main St 1',
  })) {
    if (update.action === 'act') console.log(`${update.step} done by ${update.ran}:`, update.result);
  }

  // The card fails (3 attempts), the invoice fallback charges; then shipping fails: everything is undone.
  let failedStatus = '';
  try {
    await runner.run(PlaceOrder, { orderId: 'o-2', sku: 'lamp', amount: 5_000, address: '' });
  } catch (error) {
    if (!(error instanceof SagaFailedError)) throw error;
    failedStatus = error.status; // 'compensated'
    console.log(`${error.stepId} failed: ${(error.cause as Error).message}; saga ${error.status}`);
  }

  // In a worker: resume sagas interrupted by a crash (after their lease expired).
  const report = await runner.recover({ limit: 100 });
  console.log('recovered', report);
  console.log(sagaSequenceDiagram(PlaceOrder));
  return { shipped: [...shipments], failedStatus, reservations: inventory.size };
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
// #endregion readme
