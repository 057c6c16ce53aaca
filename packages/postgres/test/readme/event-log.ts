import {
  createEventSourcedRepository,
  createMediator,
  defineCommand,
  defineEvent,
  handle,
  isConcurrencyError,
  LOG_START,
  retry,
} from '@cqrs-ts/core';
import {
  createPostgresEventStore,
  createPostgresStateRepository,
  createPostgresUnitOfWork,
  migrate,
} from '@cqrs-ts/postgres';
import pg from 'pg';

const ItemAdded = defineEvent('cart.item-added').withPayload<{ cartId: string; sku: string }>();
const AddItem = defineCommand('cart.add-item')
  .withPayload<{ cartId: string; sku: string }>()
  .returns<number>();

const pool = new pg.Pool({
  connectionString: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1/test',
});
await migrate(pool); // the outbox with its archive and stream tables, inbox, saga tables
await pool.query(
  'CREATE TABLE IF NOT EXISTS customers (id TEXT PRIMARY KEY, version BIGINT NOT NULL, items INT NOT NULL)',
);

// archive: published events move to the archive table, where the log keeps reading them
const eventStore = createPostgresEventStore({ client: pool, archive: true });
const carts = createEventSourcedRepository({
  name: 'cart',
  store: eventStore,
  events: [ItemAdded],
  initialState: () => ({ items: [] as string[] }),
  evolve: (cart, event) => ({ items: [...cart.items, event.payload.sku] }),
});
// state-based: a row of your table, saved only at the version it was loaded at
const customers = createPostgresStateRepository<{ items: number }>({
  name: 'customer',
  table: 'customers',
  columns: ['items'],
  toRow: (c) => ({ items: c.items }),
  fromRow: (row) => ({ items: Number(row.items) }),
});

const unitOfWork = createPostgresUnitOfWork({ client: pool, outbox: eventStore.outbox });
const mediator = createMediator({
  behaviors: [retry({ maxAttempts: 3, retryOn: isConcurrencyError }), unitOfWork],
  handlers: [
    handle(AddItem, async (cmd, ctx) => {
      const { cartId, sku } = cmd.payload;
      const { state } = await carts.update(ctx, cartId, () => ItemAdded.create({ cartId, sku }));
      await customers.update(ctx, 'ada', (c) => ({ items: (c?.items ?? 0) + 1 }));
      return state.items.length;
    }),
  ],
});
await mediator.send(AddItem.create({ cartId: 'c1', sku: 'book' }));
console.log(`items: ${await mediator.send(AddItem.create({ cartId: 'c1', sku: 'pen' }))}`);

// A reader follows the log by position; on Postgres a position is (transaction id, seq), and a commit shows to
// readers once every older transaction on the server has ended, so readers poll.
console.log(`positions: ${eventStore.capabilities.positions}`);
let batch = await eventStore.read({ after: LOG_START, limit: 100 });
while (batch.entries.length < 2) {
  await new Promise((resolve) => setTimeout(resolve, 50));
  batch = await eventStore.read({ after: LOG_START, limit: 100 });
}
for (const e of batch.entries) console.log(`${e.type} ${e.streamId}@${e.streamVersion}`);
console.log((await customers.load(pool, 'ada'))?.version);
await pool.end();
