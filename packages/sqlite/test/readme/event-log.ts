import { DatabaseSync } from 'node:sqlite';
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
  createSqliteEventStore,
  createSqliteStateRepository,
  createSqliteUnitOfWork,
  migrate,
} from '@cqrs-ts/sqlite';

const ItemAdded = defineEvent('cart.item-added').withPayload<{ cartId: string; sku: string }>();
const AddItem = defineCommand('cart.add-item')
  .withPayload<{ cartId: string; sku: string }>()
  .returns<number>();

const file = process.env.DATABASE_FILE ?? 'app.db';
const db = new DatabaseSync(file); // the connection handlers write with
db.exec('PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000;');
migrate(db); // the outbox with its archive and stream tables, inbox, saga tables
db.exec(
  'CREATE TABLE IF NOT EXISTS customers (id TEXT PRIMARY KEY, version INTEGER NOT NULL, items INTEGER NOT NULL)',
);
const reader = new DatabaseSync(file); // the log and the relay read on a connection of their own

// archive: published events move to the archive table, where the log keeps reading them
const eventStore = createSqliteEventStore({ database: reader, archive: true });
const carts = createEventSourcedRepository({
  name: 'cart',
  store: eventStore,
  events: [ItemAdded],
  initialState: () => ({ items: [] as string[] }),
  evolve: (cart, event) => ({ items: [...cart.items, event.payload.sku] }),
});
// state-based: a row of your table, saved only at the version it was loaded at
const customers = createSqliteStateRepository<{ items: number }>({
  name: 'customer',
  table: 'customers',
  columns: ['items'],
  toRow: (c) => ({ items: c.items }),
  fromRow: (row) => ({ items: Number(row.items) }),
});

const unitOfWork = createSqliteUnitOfWork({ database: db, outbox: eventStore.outbox });
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

// A reader follows the log by position; on SQLite the position is the seq (one writer at a time).
console.log(`positions: ${eventStore.capabilities.positions}`);
const batch = await eventStore.read({ after: LOG_START, limit: 100 });
for (const e of batch.entries) console.log(`${e.type} ${e.streamId}@${e.streamVersion}`);
console.log((await customers.load(db, 'ada'))?.version);
