/** The `write` suite on PostgreSQL (node-postgres pool). */
import {
  createPostgresEventStore,
  createPostgresOutboxStore,
  createPostgresUnitOfWork,
  migrate,
} from '@cqrs-ts/postgres';
import pg from 'pg';
import { suffix } from '../outbox/common.ts';
import type { WriteParts } from './common.ts';
import type { EventAppendParts } from './event-append.ts';

const URL = process.env.CQRS_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** The parts, or `undefined` (with a note on stdout) when Postgres is unreachable. */
export async function openPostgres(): Promise<
  (WriteParts<pg.PoolClient> & EventAppendParts<pg.PoolClient>) | undefined
> {
  const pool = new pg.Pool({ connectionString: URL, max: 4, connectionTimeoutMillis: 2000 });
  pool.on('error', () => {});
  try {
    await pool.query('SELECT 1');
  } catch (error) {
    console.log(`note: postgres unreachable, case skipped (${(error as Error).message})`);
    await pool.end().catch(() => {});
    return undefined;
  }
  const tables = { outbox: `bench_wob_${suffix}`, inbox: `bench_wib_${suffix}` };
  const business = `bench_wbiz_${suffix}`;
  const streams = `${tables.outbox}_stream`;
  await migrate(pool, { tables });
  await pool.query(`CREATE TABLE ${business} (id BIGSERIAL PRIMARY KEY, note TEXT NOT NULL)`);
  const store = createPostgresOutboxStore({ client: pool, tables, notifyChannel: false });
  return {
    store,
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
    insertBusiness: (c) => c.query(`INSERT INTO ${business} (note) VALUES ($1)`, ['order placed']),
    unitOfWork: createPostgresUnitOfWork({ client: pool, outbox: store, tables }),
    eventStore: createPostgresEventStore({ client: pool, tables, notifyChannel: false }),
    async rawAppend(c, r, expected) {
      const head =
        expected === 0
          ? await c.query(
              `INSERT INTO ${streams} (stream_id, version, created_at, updated_at) VALUES ($1, 1, $2, $2)`,
              [r.streamId, r.createdAt],
            )
          : await c.query(
              `UPDATE ${streams} SET version = version + 1, updated_at = $2 WHERE stream_id = $1 AND version = $3`,
              [r.streamId, r.createdAt, expected],
            );
      if (head.rowCount !== 1) throw new Error(`stream ${r.streamId} is not at version ${expected}`);
      await c.query(
        `INSERT INTO ${tables.outbox} (id, type, topic, key, payload, headers, content_encoding, next_attempt_at, created_at, stream_id, stream_version)
         VALUES ($1, $2, $3, $4, $5, $6, 'identity', $7, $7, $8, $9)`,
        [r.id, r.type, r.topic, r.key, r.payload, r.headers, r.createdAt, r.streamId, expected + 1],
      );
    },
    async close() {
      await pool.query(
        `DROP TABLE IF EXISTS ${tables.outbox}, ${tables.outbox}_archive, ${streams}, ${tables.inbox}, ${business}`,
      );
      await pool.end();
    },
  };
}
