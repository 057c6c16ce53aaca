/** The `read` suite on PostgreSQL (node-postgres pool). */
import { createOutboxEncoder } from '@cqrs-ts/core/spi';
import {
  createPostgresEventStore,
  createPostgresOutboxStore,
  createPostgresProjectionStore,
  createPostgresWakeUp,
  migrate,
} from '@cqrs-ts/postgres';
import pg from 'pg';
import { suffix } from '../outbox/common.ts';
import { OrderPlaced, type ReadParts } from './common.ts';

const URL = process.env.CQRS_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** The parts, or `undefined` (with a note on stdout) when Postgres is unreachable. */
export async function openPostgres(): Promise<ReadParts<pg.PoolClient> | undefined> {
  const pool = new pg.Pool({ connectionString: URL, max: 4, connectionTimeoutMillis: 2000 });
  pool.on('error', () => {});
  try {
    await pool.query('SELECT 1');
  } catch (error) {
    console.log(`note: postgres unreachable, case skipped (${(error as Error).message})`);
    await pool.end().catch(() => {});
    return undefined;
  }
  const tables = {
    outbox: `bench_rob_${suffix}`,
    inbox: `bench_rib_${suffix}`,
    projection: `bench_rpj_${suffix}`,
  };
  const model = `bench_rmodel_${suffix}`;
  const checkpoints = `bench_rcp_${suffix}`;
  const channel = `bench_read_${suffix}`;
  await migrate(pool, { tables });
  await pool.query(
    `CREATE TABLE ${model} (order_id TEXT PRIMARY KEY, total BIGINT NOT NULL, n INT NOT NULL)`,
  );
  await pool.query(`CREATE TABLE ${checkpoints} (name TEXT PRIMARY KEY, position TEXT NOT NULL)`);
  await pool.query(`INSERT INTO ${checkpoints} VALUES ('raw', '0')`);
  const upsert = `INSERT INTO ${model} AS m (order_id, total, n) VALUES ($1, $2, 1)
    ON CONFLICT (order_id) DO UPDATE SET total = m.total + EXCLUDED.total, n = m.n + 1`;
  const upsertMany = `INSERT INTO ${model} AS m (order_id, total, n)
    SELECT * FROM unnest($1::text[], $2::bigint[], $3::int[])
    ON CONFLICT (order_id) DO UPDATE SET total = m.total + EXCLUDED.total, n = m.n + EXCLUDED.n`;
  const template = createOutboxEncoder().encode(
    [OrderPlaced.create({ orderId: 'o', total: 0 })],
    Date.now(),
  )[0]!;
  return {
    log: createPostgresEventStore({ client: pool, tables, notifyChannel: channel }),
    outbox: createPostgresOutboxStore({ client: pool, tables, notifyChannel: channel }) as never,
    store: createPostgresProjectionStore({ client: pool, tables }) as never,
    async tx(fn) {
      const c = await pool.connect();
      try {
        await c.query('BEGIN');
        await fn(c);
        await c.query('COMMIT');
      } catch (error) {
        await c.query('ROLLBACK').catch(() => {});
        throw error;
      } finally {
        c.release();
      }
    },
    upsert: async (c, orderId, total) => {
      await c.query({ name: 'bench_read_upsert', text: upsert, values: [orderId, total] });
    },
    upsertMany: async (c, rows) => {
      const ids: string[] = [];
      const totals: number[] = [];
      const ns: number[] = [];
      for (const [id, r] of rows) {
        ids.push(id);
        totals.push(r.total);
        ns.push(r.n);
      }
      await c.query({ name: 'bench_read_upsert_many', text: upsertMany, values: [ids, totals, ns] });
    },
    checkpoint: async (c, position) => {
      await c.query({
        name: 'bench_read_checkpoint',
        text: `UPDATE ${checkpoints} SET position = $1 WHERE name = 'raw'`,
        values: [position],
      });
    },
    async truncate() {
      await pool.query(`TRUNCATE ${model}`);
      await pool.query(`UPDATE ${checkpoints} SET position = '0'`);
    },
    rows: async () => Number((await pool.query(`SELECT count(*) AS n FROM ${model}`)).rows[0].n),
    async bulkSeed(n) {
      // One encoded event as the template; per row a new id, order id and total, 100,000 rows per statement.
      for (let done = 0; done < n; done += 100_000) {
        const k = Math.min(100_000, n - done);
        await pool.query(
          `INSERT INTO ${tables.outbox} (id, type, topic, key, payload, headers, content_encoding, status, next_attempt_at, created_at)
           SELECT u, $1, $2, NULL, convert_to('{"orderId":"o' || g || '","total":' || (g % 100) || '}', 'UTF8'),
             $3::jsonb || jsonb_build_object('id', u::text), 'identity', 'published', $4, $4
           FROM (SELECT gen_random_uuid() AS u, g FROM generate_series($5::bigint, $6::bigint) g) s`,
          [
            template.type,
            template.topic,
            JSON.stringify(template.headers),
            template.createdAt,
            done + 1,
            done + k,
          ],
        );
      }
    },
    wakeUp: () =>
      createPostgresWakeUp({
        channel,
        connect: async () => {
          const c = new pg.Client({ connectionString: URL });
          c.on('error', () => {});
          await c.connect();
          return c;
        },
      }),
    async close() {
      await pool.query(
        `DROP TABLE IF EXISTS ${tables.outbox}, ${tables.outbox}_archive, ${tables.outbox}_stream, ${tables.inbox},
          ${tables.projection}, ${tables.projection}_doc, ${tables.projection}_parked, ${model}, ${checkpoints}`,
      );
      await pool.end();
    },
  };
}
