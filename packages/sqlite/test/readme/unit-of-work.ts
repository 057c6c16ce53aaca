import { DatabaseSync } from 'node:sqlite';
import { createMediator, defineCommand, defineEvent, handle, on, retry } from '@cqrs-ts/core';
import { createSqliteOutboxStore, createSqliteUnitOfWork, migrate } from '@cqrs-ts/sqlite';

const OrderPlaced = defineEvent('orders.order-placed', {
  topic: 'orders',
  key: (p: { orderId: string; sku: string }) => p.orderId,
}).withPayload<{ orderId: string; sku: string }>();
const PlaceOrder = defineCommand('orders.place-order')
  .withPayload<{ orderId: string; sku: string }>()
  .returns<{ orderId: string }>();

const file = process.env.DATABASE_FILE ?? 'app.db';
const db = new DatabaseSync(file); // the connection handlers write with
db.exec('PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000;');
migrate(db); // outbox, inbox (which keeps the idempotency records) and saga tables
db.exec('CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, sku TEXT NOT NULL)');
const relayDb = new DatabaseSync(file); // the relay reads and marks on a connection of its own

const unitOfWork = createSqliteUnitOfWork({
  database: db,
  outbox: createSqliteOutboxStore({ database: relayDb }),
});
const mediator = createMediator({
  behaviors: [retry(), unitOfWork], // retry() outside: each attempt gets a transaction of its own
  handlers: [
    handle(PlaceOrder, (cmd, ctx) => {
      const tx = unitOfWork.transaction(ctx); // the DatabaseSync, inside BEGIN IMMEDIATE … COMMIT
      tx.prepare('INSERT INTO orders (id, sku) VALUES (?, ?)').run(cmd.payload.orderId, cmd.payload.sku);
      ctx.emit(OrderPlaced, cmd.payload); // appended to cqrs_outbox in the same transaction
      return { orderId: cmd.payload.orderId };
    }),
    on(OrderPlaced, (event) => console.log(`after the commit: ${event.payload.orderId}`)),
  ],
});

const command = () => PlaceOrder.create({ orderId: 'o-1', sku: 'BOOK' }, { idempotencyKey: 'request-42' });
console.log(await mediator.send(command()));
console.log(await mediator.send(command())); // the stored result: the handler does not run again
const counts = relayDb
  .prepare('SELECT (SELECT count(*) FROM orders) AS orders, (SELECT count(*) FROM cqrs_outbox) AS events')
  .get() as { orders: number; events: number };
console.log(`orders: ${counts.orders}, events: ${counts.events}`);
db.close();
relayDb.close();
