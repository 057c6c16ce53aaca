/**
 * An application for the console's tests: a mediator with commands, queries and events; an in-memory outbox
 * with published records, a backlog and dead letters (one carrying a `<script>` payload); sagas in several
 * states (one `compensation_failed`); a projection runner.
 */
import {
  type AnyEvent,
  createInMemoryBroker,
  createInMemoryEventStore,
  createInMemoryOutboxStore,
  createInMemoryProjectionStore,
  createInMemorySagaStore,
  createMediator,
  createOutboxRelay,
  createProjectionRunner,
  defineCommand,
  defineDocumentProjection,
  defineEvent,
  defineQuery,
  handle,
  on,
} from '@cqrs-ts/core';
import { createSagaRunner, defineSaga, sagaContext } from '@cqrs-ts/saga';

export const OrderPlaced = defineEvent('orders.order-placed', {
  topic: 'orders',
  key: (p: { orderId: string; note?: string }) => p.orderId,
}).withPayload<{ orderId: string; note?: string }>();
const OrderCancelled = defineEvent('orders.order-cancelled', { topic: 'orders' }).withPayload<{
  orderId: string;
}>();
const PlaceOrder = defineCommand('orders.place').returns<{ orderId: string }>();
const CancelOrder = defineCommand('orders.cancel').returns<void>();
const GetOrder = defineQuery('orders.get').returns<{ orderId: string }>();

export const XSS = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">';

export interface ConsoleFixture {
  readonly mediator: ReturnType<typeof createMediator>;
  readonly store: ReturnType<typeof createInMemoryOutboxStore>;
  readonly broker: ReturnType<typeof createInMemoryBroker>;
  readonly relay: ReturnType<typeof createOutboxRelay>;
  readonly sagaStore: ReturnType<typeof createInMemorySagaStore>;
  readonly sagas: ReturnType<typeof createSagaRunner>;
  readonly projections: ReturnType<typeof createProjectionRunner>;
  /** `order-list` is caught up to the dead letters, `order-notes` has not run, `order-audit` skipped the {@link XSS} one. */
  readonly projectionNames: readonly string[];
  /** Ids of the dead letters: the first one's payload note is {@link XSS}. */
  readonly deadIds: readonly string[];
  /** Id of the saga stored `compensation_failed`. */
  readonly failedSagaId: string;
  /** Makes the refund of the failed saga work (so a resume compensates it). */
  readonly repair: () => void;
  /** Runs `n` more sagas to completion. */
  readonly moreSagas: (n: number) => Promise<void>;
  /** Makes `n` more dead letters (the broker refuses them once). */
  readonly moreDeadLetters: (n: number) => Promise<void>;
}

export async function consoleFixture(): Promise<ConsoleFixture> {
  const mediator = createMediator({
    handlers: [
      handle(PlaceOrder, () => ({ orderId: 'o-1' }), { emits: [OrderPlaced] }),
      handle(CancelOrder, () => undefined, { emits: [OrderCancelled] }),
      handle(GetOrder, () => ({ orderId: 'o-1' })),
      on(OrderPlaced, () => undefined),
      on(OrderCancelled, () => undefined),
    ],
  });
  const store = createInMemoryOutboxStore();
  const broker = createInMemoryBroker();
  const add = (events: AnyEvent[]) => store.transaction((tx) => store.append(tx, events));
  const relay = createOutboxRelay({ store, publisher: broker, maxAttempts: 1 });
  // 6 published records
  await add(Array.from({ length: 6 }, (_, i) => OrderPlaced.create({ orderId: `p${i}` }) as AnyEvent));
  await relay.runOnce();
  // 2 dead letters (one with markup in its payload), then 3 pending
  broker.failWhen(() => true);
  await add([
    OrderPlaced.create({ orderId: 'd1', note: XSS }) as AnyEvent,
    OrderPlaced.create({ orderId: 'd2' }) as AnyEvent,
  ]);
  await relay.runOnce();
  broker.failWhen(undefined);
  const deadIds = (await store.listDeadLetters()).map((r) => r.id);
  const orderDoc = (name: string) =>
    defineDocumentProjection<{ orderId: string }>({
      name,
      events: [OrderPlaced],
      documentId: (e) => (e.payload as { orderId: string }).orderId,
      evolve: (_doc, e) => ({ orderId: (e.payload as { orderId: string }).orderId }),
    });
  // skips the event whose note is markup, reporting it as its last error (with the markup in the message)
  const audit = defineDocumentProjection<{ orderId: string }>({
    name: 'order-audit',
    events: [OrderPlaced],
    onPoison: 'skip',
    documentId: (e) => (e.payload as { orderId: string }).orderId,
    evolve: (_doc, e) => {
      const p = e.payload as { orderId: string; note?: string };
      if (p.note !== undefined) throw new Error(`cannot audit ${p.note}`);
      return { orderId: p.orderId };
    },
  });
  const projections = createProjectionRunner({
    log: createInMemoryEventStore({ outbox: store }),
    store: createInMemoryProjectionStore(),
    projections: [orderDoc('order-list'), orderDoc('order-notes'), audit],
    retry: { attempts: 1 },
  });
  await projections.catchUp('order-list');
  await projections.catchUp('order-audit');
  await add(Array.from({ length: 3 }, (_, i) => OrderPlaced.create({ orderId: `q${i}` }) as AnyEvent));

  let refunds = false;
  const Order = sagaContext<{ orderId: string }>();
  const Checkout = defineSaga({
    name: 'checkout',
    context: Order,
    steps: [
      Order.step({ id: 'reserve', act: () => ({ ok: true }), compensate: () => undefined }),
      Order.step({
        id: 'charge',
        act: () => ({ paid: true }),
        compensate: () => {
          if (!refunds) throw new Error('the payment service is down');
        },
      }),
      Order.step({
        id: 'ship',
        act: (ctx) => {
          if (ctx.orderId.startsWith('fail')) throw new Error('the warehouse refused the order');
          return { shipped: true };
        },
      }),
    ],
  });
  const sagaStore = createInMemorySagaStore();
  const sagas = createSagaRunner({
    store: sagaStore,
    sagas: [Checkout],
    compensation: { backoff: { initialMs: 1 }, retryForMs: 5, coolDownMs: 60_000, budgetMs: 120_000 },
  });
  for (const orderId of ['ok-1', 'ok-2', 'ok-3']) await sagas.run(Checkout, { orderId });
  const failedSagaId = '0190f0aa-0000-7000-8000-00000000fa11';
  await sagas.run(Checkout, { orderId: 'fail-1' }, { id: failedSagaId }).catch(() => undefined);
  return {
    mediator,
    store,
    broker,
    relay,
    sagaStore,
    sagas,
    projections,
    projectionNames: ['order-list', 'order-notes', 'order-audit'],
    deadIds,
    failedSagaId,
    repair: () => {
      refunds = true;
    },
    moreSagas: async (n) => {
      for (let i = 0; i < n; i++) await sagas.run(Checkout, { orderId: `more-${i}` });
    },
    moreDeadLetters: async (n) => {
      broker.failWhen(() => true);
      await add(Array.from({ length: n }, (_, i) => OrderPlaced.create({ orderId: `x${i}` }) as AnyEvent));
      await relay.runOnce();
      broker.failWhen(undefined);
    },
  };
}
