import {
  type AnyEvent,
  createCacheInvalidation,
  createDocumentReader,
  createInMemoryEventStore,
  createInMemoryOutboxStore,
  createInMemoryProjectionStore,
  createInMemoryQueryCacheStore,
  createMediator,
  createProjectionRunner,
  defineDocumentProjection,
  defineEvent,
  defineQuery,
  handle,
  type InferMessage,
  queryCache,
} from '@cqrs-ts/core';
import { createNatsBroadcastConsumer, createNatsPublisher, ensureNatsStream } from '@cqrs-ts/nats';
import { connect } from '@nats-io/transport-node';

const GetOrder = defineQuery('orders.get-order').withPayload<{ id: string }>().returns<{ status: string }>();
const OrderShipped = defineEvent('orders.order-shipped', { topic: 'orders' }).withPayload<{ id: string }>();

const servers = process.env.NATS_URL ?? '127.0.0.1:4222';
const stream = process.env.NATS_STREAM ?? 'READ_MODEL_APPLIED';
const subjectPrefix = stream.toLowerCase();
const nc = await connect({ servers, maxReconnectAttempts: -1 });
await ensureNatsStream({ connection: nc, name: stream, subjects: [`${subjectPrefix}.>`] });

// The shared database (in memory here): the event log and the read model every process reads.
const outbox = createInMemoryOutboxStore();
const log = createInMemoryEventStore({ outbox });
const readModel = createInMemoryProjectionStore();
const orderStatus = defineDocumentProjection<{ status: string }>({
  name: 'order-status',
  events: [OrderShipped],
  documentId: (e) => (e.payload as { id: string }).id,
  evolve: () => ({ status: 'shipped' }),
});
const orders = createDocumentReader(readModel, orderStatus);

// The process holding the projection's lease publishes what it applied, once the read model has it.
const applied = await createNatsPublisher({ connection: nc, subjectPrefix });
const runner = createProjectionRunner({
  log,
  store: readModel,
  projections: [orderStatus],
  onApplied: async (events) => void (await applied.publishEvents(events)),
});

// One "process": its own in-memory cache, evicted by a broadcast consumer of its own.
async function startProcess(name: string) {
  const cache = queryCache({
    store: createInMemoryQueryCacheStore(),
    queries: [{ query: GetOrder, ttlMs: 60_000, tags: (q) => [`order:${q.payload.id}`] }],
  });
  const invalidation = createCacheInvalidation({
    cache,
    rules: [
      { event: OrderShipped, tags: (e: InferMessage<typeof OrderShipped>) => [`order:${e.payload.id}`] },
    ],
  });
  let evicted!: () => void;
  const evictedOnce = new Promise<void>((resolve) => {
    evicted = resolve;
  });
  const feed = createNatsBroadcastConsumer({
    servers,
    stream,
    name: 'order-cache', // each instance reads through its own ephemeral consumer: order-cache-<random>_1
    async handle(event: AnyEvent) {
      await invalidation.handle(event);
      evicted();
    },
  });
  await feed.start(); // from here on, every event of the stream reaches this process
  const mediator = createMediator({
    behaviors: [cache],
    handlers: [
      handle(GetOrder, async ({ payload }) => (await orders.get(payload.id)) ?? { status: 'placed' }),
    ],
  });
  const status = async () => `${name} ${(await mediator.query(GetOrder.create({ id: 'o-1' }))).status}`;
  return { feed, evictedOnce, status };
}

const a = await startProcess('a');
const b = await startProcess('b');
console.log(await a.status(), await b.status()); // a placed b placed (now cached in both)
await outbox.transaction((tx) => outbox.append(tx, [OrderShipped.create({ id: 'o-1' })]));
await runner.catchUp(); // applies it, then publishes it
await Promise.all([a.evictedOnce, b.evictedOnce]);
console.log(await a.status(), await b.status()); // a shipped b shipped
await a.feed.stop(); // deletes its ephemeral consumer
await b.feed.stop();
await runner.stop();
await applied.close();
await nc.close();
