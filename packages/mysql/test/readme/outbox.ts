import { createInMemoryBroker, createOutboxRelay, defineEvent } from '@cqrs-ts/core';
import { createMysqlOutboxStore, migrate } from '@cqrs-ts/mysql';
import mysql from 'mysql2/promise';

const OrderPlaced = defineEvent('orders.order-placed').withPayload<{ orderId: string }>();
const pool = mysql.createPool({ uri: process.env.DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/test' });
await migrate(pool);
await pool.query('CREATE TABLE IF NOT EXISTS orders (id VARCHAR(64) PRIMARY KEY)');
const outbox = createMysqlOutboxStore({ client: pool });

const conn = await pool.getConnection();
try {
  await conn.beginTransaction();
  await conn.query('INSERT INTO orders (id) VALUES (?)', ['o1']);
  await outbox.append(conn, [OrderPlaced.create({ orderId: 'o1' })]); // same transaction
  await conn.commit();
} catch (e) {
  await conn.rollback();
  throw e;
} finally {
  conn.release();
}
// Kysely: await db.transaction().execute((trx) => outbox.append(trx, [event]))  (store with { client: db })

const broker = createInMemoryBroker();
broker.subscribe('*', (m) => console.log(`published ${m.topic}`));
const relay = createOutboxRelay({ store: outbox, publisher: broker });
await relay.runOnce(); // relay.start() polls until relay.stop()
await pool.end();
