import type { AnyEvent, ProjectionBatchItem } from '@cqrs-ts/core';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { PG_URL, postgresReachable, uniqueSuffix } from '../../../packages/core/test/support/services.ts';
import { CheckoutProgressed, OrderCancelled, OrderPlaced } from '../src/service/messages.ts';
import { createPostgresStorage } from '../src/service/postgres-storage.ts';

const pgAvailable = await postgresReachable();

const placed = (orderId: string) =>
  OrderPlaced.create({
    orderId,
    customerId: `c-${orderId}`,
    lines: [{ sku: 'BOOK-1', quantity: 1, priceCents: 1200 }],
    totalCents: 1200,
    address: 'Main St 1',
  });

/** A log with placed, progressed, compensated and cancelled orders, and an event of an order never placed. */
const log: AnyEvent[] = [
  placed('o1'),
  placed('o2'),
  CheckoutProgressed.create({ orderId: 'o1', step: 'reserve-stock', action: 'act' }),
  placed('o3'),
  CheckoutProgressed.create({ orderId: 'o1', step: 'charge', action: 'act' }),
  OrderCancelled.create({ orderId: 'o2' }),
  CheckoutProgressed.create({ orderId: 'o3', step: 'reserve-stock', action: 'act' }),
  CheckoutProgressed.create({ orderId: 'ghost', step: 'charge', action: 'act' }),
  CheckoutProgressed.create({ orderId: 'o1', step: 'ship', action: 'act' }),
  CheckoutProgressed.create({ orderId: 'o3', step: 'reserve-stock', action: 'compensate' }),
] as AnyEvent[];
const items: ProjectionBatchItem[] = log.map((event, i) => ({
  event,
  context: { position: String(i + 1) } as ProjectionBatchItem['context'],
}));

describe.skipIf(!pgAvailable)('the Postgres order view', () => {
  it('writes the same rows with applyBatch (whole or split batches) as with apply one event at a time', async () => {
    const schema = `order_view_${uniqueSuffix}`;
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    try {
      const url = `${PG_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
      const storage = await createPostgresStorage({ url, poolSize: 2 });
      const view = storage.orderView as unknown as {
        apply(event: AnyEvent, db: pg.PoolClient, context: ProjectionBatchItem['context']): Promise<void>;
        applyBatch(items: readonly ProjectionBatchItem[], db: pg.PoolClient): Promise<void>;
        reset(db: pg.PoolClient): Promise<void>;
      };
      const pool = new pg.Pool({ connectionString: url, max: 2 });
      const rows = async () =>
        (
          await pool.query(
            'SELECT id, customer_id, lines, total_cents, status, steps, position, seq FROM order_view ORDER BY id',
          )
        ).rows;
      try {
        const db = await pool.connect();
        try {
          for (const { event, context } of items) await view.apply(event, db, context);
          const oneByOne = await rows();
          expect(oneByOne.map((r) => [r.id, r.status])).toEqual([
            ['o1', 'shipped'],
            ['o2', 'cancelled'],
            ['o3', expect.any(String)],
          ]);
          await view.reset(db);
          await view.applyBatch(items, db);
          expect(await rows()).toEqual(oneByOne);
          await view.reset(db);
          await view.applyBatch(items.slice(0, 4), db);
          await view.applyBatch(items.slice(4), db);
          expect(await rows()).toEqual(oneByOne);
        } finally {
          db.release();
        }
      } finally {
        await pool.end();
        await storage.close();
      }
    } finally {
      await admin.query(`DROP SCHEMA ${schema} CASCADE`);
      await admin.end();
    }
  });
});
