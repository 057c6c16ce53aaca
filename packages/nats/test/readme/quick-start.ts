import { createMediator, createOutboxRelay, defineEvent, on } from '@cqrs-ts/core';
import { createNatsConsumer, createNatsPublisher, ensureNatsStream } from '@cqrs-ts/nats';
import { createPostgresInboxGuard, createPostgresOutboxStore, migrate } from '@cqrs-ts/postgres';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';

const OrderPlaced = defineEvent('orders.order-placed', {
  topic: 'orders', // subject: <subjectPrefix>.orders
  key: (p: { orderId: string }) => p.orderId, // ordering key: ce-partitionkey
}).withPayload<{ orderId: string }>();

const stream = process.env.NATS_STREAM ?? 'CQRS';
const subjectPrefix = stream.toLowerCase();
const nc = await connect({ servers: process.env.NATS_URL ?? '127.0.0.1:4222', maxReconnectAttempts: -1 });
await ensureNatsStream({ connection: nc, name: stream, subjects: [`${subjectPrefix}.>`] }); // idempotent

// Producer side: the relay publishes what the outbox holds through JetStream (persisted, acked, deduplicated).
const pool = new pg.Pool({
  connectionString: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1/test',
});
await migrate(pool); // the outbox and inbox tables, idempotent
const outbox = createPostgresOutboxStore({ client: pool });
const publisher = await createNatsPublisher({ connection: nc, subjectPrefix });
const relay = createOutboxRelay({ store: outbox, publisher });
relay.start();

// Consumer side: a durable pull consumer; handlers run in the producer's correlation and trace context.
let handled!: () => void;
const done = new Promise<void>((resolve) => {
  handled = resolve;
});
const mediator = createMediator({
  handlers: [
    on(OrderPlaced, async (event) => {
      console.log('placed', event.payload.orderId);
      handled();
    }),
  ],
});
const consumer = createNatsConsumer({
  connection: nc,
  stream,
  name: 'billing', // durable name and inbox consumer key
  mediator,
  inbox: createPostgresInboxGuard({ client: pool }), // a redelivered message has one effect
  maxAttempts: 5,
  concurrency: 16,
});
await consumer.start();

// A business transaction appends the event; the relay publishes it after the commit.
const tx = await pool.connect();
try {
  await tx.query('BEGIN');
  await outbox.append(tx, [OrderPlaced.create({ orderId: 'o-1' })]);
  await tx.query('COMMIT');
} finally {
  tx.release();
}
await done;

// shutdown
await consumer.stop(); // stop fetching, finish running handlers, flush acks
await relay.stop();
await publisher.close();
await nc.drain();
await pool.end();
