/** The `write` suite on PostgreSQL (node-postgres pool). */
import { createPostgresOutboxStore, createPostgresUnitOfWork, migrate } from '@cqrs-ts/postgres';
import pg from 'pg';
import { suffix } from '../outbox/common.ts';
import type { WriteParts } from './common.ts';

const URL = process.env.CQRS_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** The parts, or `undefined` (with a note on stdout) when Postgres is unreachable. */
export async function openPostgres(): Promise<WriteParts<pg.PoolClient> | undefined> {
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
    async close() {
      await pool.query(`DROP TABLE IF EXISTS ${tables.outbox}, ${tables.inbox}, ${business}`);
      await pool.end();
    },
  };
}
