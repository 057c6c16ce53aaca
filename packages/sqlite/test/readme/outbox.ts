import { DatabaseSync } from 'node:sqlite';
import { createInMemoryBroker, createOutboxRelay, defineEvent } from '@cqrs-ts/core';
import { createSqliteOutboxStore, migrate } from '@cqrs-ts/sqlite';

const OrderPlaced = defineEvent('orders.order-placed').withPayload<{ orderId: string }>();
const file = process.env.DATABASE_FILE ?? 'app.db';

const app = new DatabaseSync(file);
const relayDb = new DatabaseSync(file); // the relay's own connection
for (const db of [app, relayDb]) db.exec('PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000;');
migrate(app);
app.exec('CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY)');
const outbox = createSqliteOutboxStore({ database: relayDb });

app.exec('BEGIN IMMEDIATE');
try {
  app.prepare('INSERT INTO orders (id) VALUES (?)').run('o1');
  await outbox.append(app, [OrderPlaced.create({ orderId: 'o1' })]); // needs the open transaction
  app.exec('COMMIT');
} catch (e) {
  app.exec('ROLLBACK');
  throw e;
}

const broker = createInMemoryBroker();
broker.subscribe('*', (m) => console.log(`published ${m.topic}`));
const relay = createOutboxRelay({ store: outbox, publisher: broker });
await relay.runOnce(); // or relay.start(): it polls (and wakes up) until relay.stop()
