/**
 * The orders service on PostgreSQL (pg Pool): the same tables and projection as the SQLite storage; several
 * processes share one database.
 */
import { type AnyEvent, type DispatchContext, defineProjection } from '@cqrs-ts/core';
import {
  createPostgresEventStore,
  createPostgresProjectionStore,
  createPostgresSagaStore,
  createPostgresUnitOfWork,
  migrate,
} from '@cqrs-ts/postgres';
import pg from 'pg';
import {
  CheckoutProgressed,
  CheckoutRefused,
  OrderCancelled,
  OrderPlaced,
  type OrderStatus,
} from './messages.ts';
import { INITIAL_STOCK } from './sqlite-storage.ts';
import { evolveView, type OrdersStorage, toView } from './storage.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, lines TEXT NOT NULL,
  total_cents BIGINT NOT NULL, address TEXT NOT NULL, status TEXT NOT NULL, placed_at BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS stock (sku TEXT PRIMARY KEY, on_hand BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS reservations (order_id TEXT NOT NULL, sku TEXT NOT NULL, quantity BIGINT NOT NULL,
  PRIMARY KEY (order_id, sku));
CREATE TABLE IF NOT EXISTS payments (order_id TEXT PRIMARY KEY, amount_cents BIGINT NOT NULL, status TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS order_view (id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, lines TEXT NOT NULL,
  total_cents BIGINT NOT NULL, status TEXT NOT NULL, steps TEXT NOT NULL, position TEXT NOT NULL,
  seq NUMERIC NOT NULL);
CREATE INDEX IF NOT EXISTS order_view_customer ON order_view (customer_id, seq);
CREATE INDEX IF NOT EXISTS order_view_seq ON order_view (seq);
`;

type Row = Record<string, unknown>;

/** Connects a pool to `url` and migrates the tables (idempotent: every process may run it). */
export async function createPostgresStorage(options: {
  url: string;
  poolSize: number;
}): Promise<OrdersStorage> {
  const pool = new pg.Pool({ connectionString: options.url, max: options.poolSize });
  try {
    await pool.query('SELECT pg_advisory_lock(727001)'); // one migration at a time across processes
    try {
      await migrate(pool);
      await pool.query(SCHEMA);
      for (const [sku, n] of Object.entries(INITIAL_STOCK))
        await pool.query('INSERT INTO stock (sku, on_hand) VALUES ($1, $2) ON CONFLICT (sku) DO NOTHING', [
          sku,
          n,
        ]);
    } finally {
      await pool.query('SELECT pg_advisory_unlock(727001)');
    }
  } catch (error) {
    await pool.end();
    throw error;
  }
  // No pg_notify per append: NOTIFY takes a database-wide lock at commit, which serializes the commits of every
  // order: the service bench's place order measured 0.33x the hand-written route with it and 0.58x without, on a
  // shared 2-core machine. The relay and the projection runner poll every 20 ms instead.
  const eventStore = createPostgresEventStore({
    client: pool,
    source: 'orders-service',
    notifyChannel: false,
  });
  /**
   * Every order of a popular SKU updates its one stock row. A transaction that waits for that row lock already has a
   * transaction id (an UPDATE takes one before it waits), and the order-view projection reads the outbox as a log
   * that stops at the oldest running transaction id: a queue of checkouts on one SKU would hold every placed order
   * out of the projected list. Waiting on an advisory lock per SKU first, which takes no transaction id, leaves only
   * the transaction that holds the row (a few statements long) in the way.
   */
  const waitForSku = 'WITH w AS MATERIALIZED (SELECT pg_advisory_xact_lock(727002, hashtext($2)))';
  const unitOfWork = createPostgresUnitOfWork({ client: pool, outbox: eventStore.outbox });
  const tx = (ctx: DispatchContext) => unitOfWork.transaction(ctx);

  const orderView = defineProjection<pg.PoolClient>({
    name: 'order-view',
    events: [OrderPlaced, OrderCancelled, CheckoutProgressed],
    async apply(event: AnyEvent, db, context) {
      const position = context.position ?? '0';
      if (OrderPlaced.is(event)) {
        const p = event.payload;
        await db.query(
          `INSERT INTO order_view (id, customer_id, lines, total_cents, status, steps, position, seq)
           VALUES ($1, $2, $3, $4, 'placed', '[]', $5, $6) ON CONFLICT (id) DO NOTHING`,
          [p.orderId, p.customerId, JSON.stringify(p.lines), p.totalCents, position, position],
        );
        return;
      }
      const orderId = (event.payload as { orderId: string }).orderId;
      const { rows } = await db.query('SELECT status, steps FROM order_view WHERE id = $1', [orderId]);
      const row = rows[0] as Row | undefined;
      if (row === undefined) return;
      const next = evolveView(row, event);
      await db.query('UPDATE order_view SET status = $1, steps = $2, position = $3 WHERE id = $4', [
        next.status,
        next.steps,
        position,
        orderId,
      ]);
    },
    // A batch at once: the placed orders in one INSERT, the rows the other events touch read in one SELECT,
    // evolved in log order in memory and written back in one UPDATE (three statements, whatever the batch size).
    async applyBatch(items, db) {
      const placed = { ids: [] as string[], customers: [] as string[], lines: [] as string[] };
      const totals: number[] = [];
      const positions: string[] = [];
      const changed: { orderId: string; event: AnyEvent; position: string }[] = [];
      for (const { event, context } of items) {
        const position = context.position ?? '0';
        if (OrderPlaced.is(event)) {
          const p = event.payload;
          placed.ids.push(p.orderId);
          placed.customers.push(p.customerId);
          placed.lines.push(JSON.stringify(p.lines));
          totals.push(p.totalCents);
          positions.push(position);
        } else changed.push({ orderId: (event.payload as { orderId: string }).orderId, event, position });
      }
      if (placed.ids.length > 0) {
        await db.query(
          `INSERT INTO order_view (id, customer_id, lines, total_cents, status, steps, position, seq)
           SELECT id, customer_id, lines, total_cents, 'placed', '[]', position, position::numeric
           FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[])
             AS t(id, customer_id, lines, total_cents, position)
           ON CONFLICT (id) DO NOTHING`,
          [placed.ids, placed.customers, placed.lines, totals, positions],
        );
      }
      if (changed.length === 0) return;
      const ids = [...new Set(changed.map((c) => c.orderId))];
      const { rows } = await db.query('SELECT id, status, steps FROM order_view WHERE id = ANY($1::text[])', [
        ids,
      ]);
      const views = new Map<string, { status: OrderStatus; steps: string; position: string }>();
      for (const row of rows as Row[])
        views.set(String(row.id), {
          status: row.status as OrderStatus,
          steps: String(row.steps),
          position: '',
        });
      for (const { orderId, event, position } of changed) {
        const view = views.get(orderId);
        if (view === undefined) continue; // as apply: an order this view never saw placed
        views.set(orderId, { ...evolveView(view, event), position });
      }
      const touched = [...views].filter(([, v]) => v.position !== '');
      if (touched.length === 0) return;
      await db.query(
        `UPDATE order_view v SET status = t.status, steps = t.steps, position = t.position
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS t(id, status, steps, position)
         WHERE v.id = t.id`,
        [
          touched.map(([id]) => id),
          touched.map(([, v]) => v.status),
          touched.map(([, v]) => v.steps),
          touched.map(([, v]) => v.position),
        ],
      );
    },
    async reset(db) {
      await db.query('DELETE FROM order_view');
    },
  });

  const one = async (sql: string) => Number((await pool.query(sql)).rows[0].n);
  const group = async (sql: string) =>
    Object.fromEntries((await pool.query(sql)).rows.map((r: Row) => [String(r.k), Number(r.n)]));

  return {
    kind: 'postgres',
    relayMode: 'lease',
    unitOfWork: unitOfWork as OrdersStorage['unitOfWork'],
    log: eventStore,
    outbox: eventStore.outbox,
    projections: createPostgresProjectionStore({ client: pool }) as OrdersStorage['projections'],
    orderView,
    sagas: createPostgresSagaStore({ client: pool }),
    wakeUp: () => undefined,
    async insertOrder(ctx, o) {
      await tx(ctx).query(
        'INSERT INTO orders (id, customer_id, lines, total_cents, address, status, placed_at) VALUES ($1, $2, $3, $4, $5, $6, $7)',
        [o.id, o.customerId, JSON.stringify(o.lines), o.totalCents, o.address, 'placed', Date.now()],
      );
    },
    async cancelOrder(ctx, orderId) {
      const db = tx(ctx);
      const { rows } = await db.query('SELECT status FROM orders WHERE id = $1 FOR UPDATE', [orderId]);
      if (rows.length === 0) return 'missing';
      if (rows[0].status === 'placed')
        await db.query("UPDATE orders SET status = 'cancelled' WHERE id = $1", [orderId]);
      return String(rows[0].status) as OrderStatus;
    },
    async runStep(ctx, { orderId, step, action, lines, totalCents }, limit) {
      const db = tx(ctx);
      if (step === 'open') {
        if (action === 'compensate')
          await db.query("UPDATE orders SET status = 'rejected' WHERE id = $1 AND status = 'placed'", [
            orderId,
          ]);
      } else if (step === 'reserve-stock') {
        if (action === 'act') {
          // one lock order for every transaction: no deadlock between two orders of the same SKUs
          for (const line of [...lines].sort((a, b) => a.sku.localeCompare(b.sku))) {
            const taken = await db.query(
              `${waitForSku} UPDATE stock SET on_hand = on_hand - $1 WHERE sku = $2 AND on_hand >= $1 AND EXISTS (SELECT 1 FROM w)`,
              [line.quantity, line.sku],
            );
            if (taken.rowCount === 0) throw new CheckoutRefused(`${line.sku} is out of stock`);
            await db.query(
              `INSERT INTO reservations (order_id, sku, quantity) VALUES ($1, $2, $3)
               ON CONFLICT (order_id, sku) DO UPDATE SET quantity = reservations.quantity + excluded.quantity`,
              [orderId, line.sku, line.quantity],
            );
          }
        } else {
          const { rows } = await db.query(
            'DELETE FROM reservations WHERE order_id = $1 RETURNING sku, quantity',
            [orderId],
          );
          for (const r of (rows as Row[]).sort((a, b) => String(a.sku).localeCompare(String(b.sku))))
            await db.query(
              `${waitForSku} UPDATE stock SET on_hand = on_hand + $1 WHERE sku = $2 AND EXISTS (SELECT 1 FROM w)`,
              [r.quantity, r.sku],
            );
        }
      } else if (step === 'charge') {
        if (action === 'act') {
          if (totalCents > limit) throw new CheckoutRefused('card declined');
          await db.query(
            "INSERT INTO payments (order_id, amount_cents, status) VALUES ($1, $2, 'charged') ON CONFLICT DO NOTHING",
            [orderId, totalCents],
          );
        } else await db.query("UPDATE payments SET status = 'refunded' WHERE order_id = $1", [orderId]);
      } else if (step === 'ship' && action === 'act') {
        const shipped = await db.query(
          "UPDATE orders SET status = 'shipped' WHERE id = $1 AND status = 'placed'",
          [orderId],
        );
        if (shipped.rowCount === 0) throw new CheckoutRefused('the order was cancelled');
      }
    },
    async getOrder(id) {
      const { rows } = await pool.query('SELECT * FROM order_view WHERE id = $1', [id]);
      return rows.length === 0 ? undefined : toView(rows[0]);
    },
    async listOrders(filter, offset, limit) {
      const where: string[] = [];
      const params: unknown[] = [];
      if (filter.customerId !== undefined)
        params.push(filter.customerId) && where.push(`customer_id = $${params.length}`);
      if (filter.status !== undefined) params.push(filter.status) && where.push(`status = $${params.length}`);
      const w = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
      const total = Number((await pool.query(`SELECT count(*) AS n FROM order_view ${w}`, params)).rows[0].n);
      const { rows } = await pool.query(
        `SELECT * FROM order_view ${w} ORDER BY seq DESC LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
        [...params, limit, offset],
      );
      return { items: rows.map(toView), total };
    },
    async stats() {
      return {
        orders: await one('SELECT count(*) AS n FROM orders'),
        projected: await group('SELECT status AS k, count(*) AS n FROM order_view GROUP BY status'),
        sagas: await group('SELECT status AS k, count(*) AS n FROM cqrs_saga GROUP BY status'),
        pending: await one("SELECT count(*) AS n FROM cqrs_outbox WHERE status = 'pending'"),
        payments: await one("SELECT count(*) AS n FROM payments WHERE status = 'charged'"),
        refunds: await one("SELECT count(*) AS n FROM payments WHERE status = 'refunded'"),
      };
    },
    async ping() {
      await pool.query('SELECT 1');
    },
    async close() {
      await pool.end();
    },
  };
}
