import { createMediator, defineCommand, defineEvent, handle, on, retry } from '@cqrs-ts/core';
import { createPostgresOutboxStore, createPostgresUnitOfWork, migrate } from '@cqrs-ts/postgres';
import pg from 'pg';

const OrderPlaced = defineEvent('orders.order-placed', {
  topic: 'orders',
  key: (p: { orderId: string; sku: string }) => p.orderId,
}).withPayload<{ orderId: string; sku: string }>();
const PlaceOrder = defineCommand('orders.place-order')
  .withPayload<{ orderId: string; sku: string }>()
  .returns<{ orderId: string }>();

const pool = new pg.Pool({
  connectionString: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1/test',
});
await migrate(pool); // outbox, inbox (which keeps the idempotency records) and saga tables
await pool.query('CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, sku TEXT NOT NULL)');

// pg Pool: handlers get a pg.PoolClient; postgres.js sql: a TransactionSql; Kysely<DB>: a Transaction<DB>.
const unitOfWork = createPostgresUnitOfWork({
  client: pool,
  outbox: createPostgresOutboxStore({ client: pool }),
});
const mediator = createMediator({
  behaviors: [retry(), unitOfWork], // retry() outside: each attempt gets a transaction of its own
  handlers: [
    handle(PlaceOrder, async (cmd, ctx) => {
      const tx = unitOfWork.transaction(ctx); // pg.PoolClient, inside BEGIN … COMMIT
      await tx.query('INSERT INTO orders (id, sku) VALUES ($1, $2)', [cmd.payload.orderId, cmd.payload.sku]);
      ctx.emit(OrderPlaced, cmd.payload); // appended to cqrs_outbox in the same transaction
      return { orderId: cmd.payload.orderId };
    }),
    on(OrderPlaced, (event) => console.log(`after the commit: ${event.payload.orderId}`)),
  ],
});

const command = () => PlaceOrder.create({ orderId: 'o-1', sku: 'BOOK' }, { idempotencyKey: 'request-42' });
console.log(await mediator.send(command()));
console.log(await mediator.send(command())); // the stored result: the handler does not run again
const { rows } = await pool.query(
  'SELECT (SELECT count(*) FROM orders) AS orders, (SELECT count(*) FROM cqrs_outbox) AS events',
);
console.log(`orders: ${rows[0].orders}, events: ${rows[0].events}`);
await pool.end();
