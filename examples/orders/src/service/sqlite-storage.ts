/**
 * The orders service on node:sqlite (the embedded default). One connection writes (commands, read models,
 * idempotency records: the library queues their transactions on it), one reads (queries, the event log, the
 * relay), and the sagas live in a file of their own, so no write waits on another connection's transaction.
 */
import { DatabaseSync } from 'node:sqlite';
import { type AnyEvent, type DispatchContext, defineProjection } from '@cqrs-ts/core';
import {
  createSqliteEventStore,
  createSqliteProjectionStore,
  createSqliteSagaStore,
  createSqliteUnitOfWork,
  migrate,
} from '@cqrs-ts/sqlite';
import {
  type CATALOGUE,
  CheckoutProgressed,
  CheckoutRefused,
  OrderCancelled,
  OrderPlaced,
  type OrderStatus,
} from './messages.ts';
import { evolveView, type OrdersStorage, toView } from './storage.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, lines TEXT NOT NULL,
  total_cents INTEGER NOT NULL, address TEXT NOT NULL, status TEXT NOT NULL, placed_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS stock (sku TEXT PRIMARY KEY, on_hand INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS reservations (order_id TEXT NOT NULL, sku TEXT NOT NULL, quantity INTEGER NOT NULL,
  PRIMARY KEY (order_id, sku));
CREATE TABLE IF NOT EXISTS payments (order_id TEXT PRIMARY KEY, amount_cents INTEGER NOT NULL, status TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS order_view (id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, lines TEXT NOT NULL,
  total_cents INTEGER NOT NULL, status TEXT NOT NULL, steps TEXT NOT NULL, position TEXT NOT NULL,
  seq INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS order_view_customer ON order_view (customer_id, seq);
`;

/** Stock a new database starts with. */
export const INITIAL_STOCK: Readonly<Record<keyof typeof CATALOGUE, number>> = {
  'BOOK-1': 1_000_000_000,
  'MUG-3': 1_000_000_000,
  'PEN-2': 1_000_000_000,
  'RARE-1': 5,
  'LAMP-9': 1_000_000,
};

/** Opens (and migrates) the SQLite files. */
export function createSqliteStorage(options: { file: string; sagaFile: string }): OrdersStorage {
  const writer = new DatabaseSync(options.file);
  const reader = new DatabaseSync(options.file);
  const sagaDb = new DatabaseSync(options.sagaFile);
  writer.exec('PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL;');
  // the reader never waits on the writer's lock while the writer's transaction waits for this thread
  reader.exec('PRAGMA busy_timeout = 0;');
  sagaDb.exec('PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL;');
  migrate(writer);
  migrate(sagaDb);
  writer.exec(SCHEMA);
  const seed = writer.prepare('INSERT INTO stock (sku, on_hand) VALUES (?, ?) ON CONFLICT (sku) DO NOTHING');
  for (const [sku, n] of Object.entries(INITIAL_STOCK)) seed.run(sku, n);

  const eventStore = createSqliteEventStore({ database: reader, source: 'orders-service' });
  const unitOfWork = createSqliteUnitOfWork({ database: writer, outbox: eventStore.outbox });
  const tx = (ctx: DispatchContext) => unitOfWork.transaction(ctx);

  const orderView = defineProjection<DatabaseSync>({
    name: 'order-view',
    events: [OrderPlaced, OrderCancelled, CheckoutProgressed],
    apply(event: AnyEvent, db, context) {
      const position = context.position ?? '0';
      if (OrderPlaced.is(event)) {
        const p = event.payload;
        db.prepare(
          `INSERT INTO order_view (id, customer_id, lines, total_cents, status, steps, position, seq)
           VALUES (?, ?, ?, ?, 'placed', '[]', ?, ?) ON CONFLICT (id) DO NOTHING`,
        ).run(p.orderId, p.customerId, JSON.stringify(p.lines), p.totalCents, position, BigInt(position));
        return;
      }
      const orderId = (event.payload as { orderId: string }).orderId;
      const row = db.prepare('SELECT status, steps FROM order_view WHERE id = ?').get(orderId);
      if (row === undefined) return;
      const next = evolveView(row, event);
      db.prepare('UPDATE order_view SET status = ?, steps = ?, position = ? WHERE id = ?').run(
        next.status,
        next.steps,
        position,
        orderId,
      );
    },
    reset(db) {
      db.exec('DELETE FROM order_view');
    },
  });

  return {
    kind: 'sqlite',
    relayMode: 'auto',
    unitOfWork: unitOfWork as OrdersStorage['unitOfWork'],
    log: eventStore,
    outbox: eventStore.outbox,
    projections: createSqliteProjectionStore({ database: writer }) as OrdersStorage['projections'],
    orderView,
    sagas: createSqliteSagaStore({ database: sagaDb }),
    wakeUp: () => undefined,
    async insertOrder(ctx, o) {
      tx(ctx)
        .prepare(
          'INSERT INTO orders (id, customer_id, lines, total_cents, address, status, placed_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
        )
        .run(o.id, o.customerId, JSON.stringify(o.lines), o.totalCents, o.address, 'placed', Date.now());
    },
    async cancelOrder(ctx, orderId) {
      const db = tx(ctx);
      const row = db.prepare('SELECT status FROM orders WHERE id = ?').get(orderId);
      if (row === undefined) return 'missing';
      if (row.status === 'placed')
        db.prepare("UPDATE orders SET status = 'cancelled' WHERE id = ?").run(orderId);
      return String(row.status) as OrderStatus;
    },
    async runStep(ctx, { orderId, step, action, lines, totalCents }, limit) {
      const db = tx(ctx);
      if (step === 'open') {
        if (action === 'compensate')
          db.prepare("UPDATE orders SET status = 'rejected' WHERE id = ? AND status = 'placed'").run(orderId);
      } else if (step === 'reserve-stock') {
        if (action === 'act') {
          for (const line of lines) {
            const taken = db
              .prepare('UPDATE stock SET on_hand = on_hand - ? WHERE sku = ? AND on_hand >= ?')
              .run(line.quantity, line.sku, line.quantity);
            if (taken.changes === 0) throw new CheckoutRefused(`${line.sku} is out of stock`);
            db.prepare(
              'INSERT INTO reservations (order_id, sku, quantity) VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET quantity = quantity + excluded.quantity',
            ).run(orderId, line.sku, line.quantity);
          }
        } else {
          for (const r of db
            .prepare('SELECT sku, quantity FROM reservations WHERE order_id = ?')
            .all(orderId))
            db.prepare('UPDATE stock SET on_hand = on_hand + ? WHERE sku = ?').run(
              Number(r.quantity),
              String(r.sku),
            );
          db.prepare('DELETE FROM reservations WHERE order_id = ?').run(orderId);
        }
      } else if (step === 'charge') {
        if (action === 'act') {
          if (totalCents > limit) throw new CheckoutRefused('card declined');
          db.prepare(
            "INSERT INTO payments (order_id, amount_cents, status) VALUES (?, ?, 'charged') ON CONFLICT DO NOTHING",
          ).run(orderId, totalCents);
        } else db.prepare("UPDATE payments SET status = 'refunded' WHERE order_id = ?").run(orderId);
      } else if (step === 'ship' && action === 'act') {
        const shipped = db
          .prepare("UPDATE orders SET status = 'shipped' WHERE id = ? AND status = 'placed'")
          .run(orderId);
        if (shipped.changes === 0) throw new CheckoutRefused('the order was cancelled');
      }
    },
    async getOrder(id) {
      const row = reader.prepare('SELECT * FROM order_view WHERE id = ?').get(id);
      return row === undefined ? undefined : toView(row);
    },
    async listOrders(filter, offset, limit) {
      const where: string[] = [];
      const params: string[] = [];
      if (filter.customerId !== undefined) where.push('customer_id = ?') && params.push(filter.customerId);
      if (filter.status !== undefined) where.push('status = ?') && params.push(filter.status);
      const w = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
      const total = Number(reader.prepare(`SELECT count(*) AS n FROM order_view ${w}`).get(...params)?.n);
      const rows = reader
        .prepare(`SELECT * FROM order_view ${w} ORDER BY seq DESC LIMIT ? OFFSET ?`)
        .all(...params, limit, offset);
      return { items: rows.map(toView), total };
    },
    async stats() {
      const group = (db: DatabaseSync, sql: string) =>
        Object.fromEntries(
          db
            .prepare(sql)
            .all()
            .map((r) => [String(r.k), Number(r.n)]),
        );
      const one = (sql: string) => Number(reader.prepare(sql).get()?.n);
      return {
        orders: one('SELECT count(*) AS n FROM orders'),
        projected: group(reader, 'SELECT status AS k, count(*) AS n FROM order_view GROUP BY status'),
        sagas: group(sagaDb, 'SELECT status AS k, count(*) AS n FROM cqrs_saga GROUP BY status'),
        pending: one("SELECT count(*) AS n FROM cqrs_outbox WHERE status = 'pending'"),
        payments: one("SELECT count(*) AS n FROM payments WHERE status = 'charged'"),
        refunds: one("SELECT count(*) AS n FROM payments WHERE status = 'refunded'"),
      };
    },
    async ping() {
      reader.prepare('SELECT 1').get();
    },
    async close() {
      reader.close();
      writer.close();
      sagaDb.close();
    },
  };
}
