import { createInMemoryBroker, createOutboxRelay, defineEvent } from '@cqrs-ts/core';
import { createPostgresOutboxStore, createPostgresWakeUp, migrate } from '@cqrs-ts/postgres';
import pg from 'pg';

const OrderPlaced = defineEvent('orders.order-placed', {
  topic: 'orders',
  key: (p: { orderId: string }) => p.orderId,
}).withPayload<{ orderId: string }>();
const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1/test';
const pool = new pg.Pool({ connectionString: url });
await migrate(pool, { tables: { outbox: 'app_outbox', inbox: 'app_inbox' } });
await pool.query('CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY)');
const outbox = createPostgresOutboxStore({ client: pool, tables: { outbox: 'app_outbox' } });

// pg: the append runs INSIDE the business transaction
const tx = await pool.connect();
try {
  await tx.query('BEGIN');
  await tx.query('INSERT INTO orders (id) VALUES ($1)', ['o1']);
  await outbox.append(tx, [OrderPlaced.create({ orderId: 'o1' })]);
  await tx.query('COMMIT');
} catch (e) {
  await tx.query('ROLLBACK');
  throw e;
} finally {
  tx.release();
}

// postgres.js: await sql.begin((t) => outbox.append(t, [event]))   (store created with { client: sql })
// Kysely:      await db.transaction().execute((trx) => outbox.append(trx, [event]))  (store with { client: db })

const broker = createInMemoryBroker();
broker.subscribe('*', (m) => console.log(`published ${m.topic}`));
const relay = createOutboxRelay({
  store: outbox,
  publisher: broker,
  wakeUp: createPostgresWakeUp({ connect: async () => new pg.Client({ connectionString: url }) }), // or { sql }
});
await relay.runOnce(); // relay.start() polls and wakes up on each commit until relay.stop()
await pool.end();
