import { createMediator, defineCommand, defineEvent, handle, on, retry } from '@cqrs-ts/core';
import { createMysqlOutboxStore, createMysqlUnitOfWork, migrate } from '@cqrs-ts/mysql';
import mysql from 'mysql2/promise';

const OrderPlaced = defineEvent('orders.order-placed', {
  topic: 'orders',
  key: (p: { orderId: string; sku: string }) => p.orderId,
}).withPayload<{ orderId: string; sku: string }>();
const PlaceOrder = defineCommand('orders.place-order')
  .withPayload<{ orderId: string; sku: string }>()
  .returns<{ orderId: string }>();

const pool = mysql.createPool({ uri: process.env.DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/test' });
await migrate(pool); // outbox, inbox (which keeps the idempotency records) and saga tables
await pool.query('CREATE TABLE IF NOT EXISTS orders (id VARCHAR(64) PRIMARY KEY, sku VARCHAR(64) NOT NULL)');

// mysql2 pool: handlers get a mysql2 PoolConnection; Kysely<DB>: a Transaction<DB>.
const unitOfWork = createMysqlUnitOfWork({ client: pool, outbox: createMysqlOutboxStore({ client: pool }) });
const mediator = createMediator({
  behaviors: [retry(), unitOfWork], // retry() outside: each attempt gets a transaction of its own
  handlers: [
    handle(PlaceOrder, async (cmd, ctx) => {
      const tx = unitOfWork.transaction(ctx); // a PoolConnection inside START TRANSACTION … COMMIT
      await tx.query('INSERT INTO orders (id, sku) VALUES (?, ?)', [cmd.payload.orderId, cmd.payload.sku]);
      ctx.emit(OrderPlaced, cmd.payload); // appended to cqrs_outbox in the same transaction
      return { orderId: cmd.payload.orderId };
    }),
    on(OrderPlaced, (event) => console.log(`after the commit: ${event.payload.orderId}`)),
  ],
});

const command = () => PlaceOrder.create({ orderId: 'o-1', sku: 'BOOK' }, { idempotencyKey: 'request-42' });
console.log(await mediator.send(command()));
console.log(await mediator.send(command())); // the stored result: the handler does not run again
const [rows] = await pool.query(
  'SELECT (SELECT count(*) FROM orders) AS orders, (SELECT count(*) FROM cqrs_outbox) AS events',
);
const [counts] = rows as { orders: number; events: number }[];
console.log(`orders: ${counts?.orders}, events: ${counts?.events}`);
await pool.end();
