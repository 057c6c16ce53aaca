import { createMediator, createOutboxRelay, defineEvent, on } from '@cqrs-ts/core';
import { createPostgresInboxGuard, createPostgresOutboxStore, migrate } from '@cqrs-ts/postgres';
import { createRedisStreamsConsumer, createRedisStreamsPublisher } from '@cqrs-ts/redis';
import { Redis } from 'ioredis';
import pg from 'pg';

const OrderPlaced = defineEvent('orders.order-placed', {
  topic: 'orders',
  key: (p: { orderId: string }) => p.orderId,
}).withPayload<{ orderId: string }>();

const prefix = process.env.REDIS_PREFIX ?? 'app:';
const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const pool = new pg.Pool({
  connectionString: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1/test',
});
await migrate(pool); // cqrs_outbox and cqrs_inbox

// Publishing: the outbox relay moves committed events to the stream `<prefix>orders`.
const publisher = createRedisStreamsPublisher({ redis, streamPrefix: prefix, maxLen: 1_000_000 });
const outbox = createPostgresOutboxStore({ client: pool });
const relay = createOutboxRelay({ store: outbox, publisher });
relay.start();

// Consuming: group `billing`, handlers of the mediator, one effect per event with the inbox.
const billed: string[] = [];
let bothBilled!: () => void;
const done = new Promise<void>((resolve) => {
  bothBilled = resolve;
});
const mediator = createMediator({
  handlers: [
    on(OrderPlaced, async (e) => {
      billed.push(`bill ${e.payload.orderId}, correlation ${e.metadata.correlationId}`);
      if (billed.length === 2) bothBilled();
    }),
  ],
});
const consumer = createRedisStreamsConsumer({
  redis,
  streams: [`${prefix}orders`],
  group: 'billing',
  concurrency: 16,
  processor: {
    name: 'billing',
    mediator,
    inbox: createPostgresInboxGuard({ client: pool }),
    maxAttempts: 5,
    backoff: { initialMs: 200, maxMs: 30_000 },
  },
});
await consumer.start();

// Through the outbox: appended in the business transaction, published by the relay after the commit.
const tx = await pool.connect();
try {
  await tx.query('BEGIN');
  await outbox.append(tx, [OrderPlaced.create({ orderId: 'o-1' }, { correlationId: 'checkout-1' })]);
  await tx.query('COMMIT');
} finally {
  tx.release();
}
// Or directly, without an outbox:
await publisher.publishEvents([OrderPlaced.create({ orderId: 'o-2' }, { correlationId: 'checkout-2' })]);
await done;
console.log(billed.sort().join('\n'));

// Shutdown: stop reading, finish handlers, ack, close what the package opened.
await consumer.stop();
await relay.stop();
await publisher.close();
redis.disconnect();
await pool.end();
