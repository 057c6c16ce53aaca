/**
 * The `saga` suite on PostgreSQL (node-postgres pool of one connection). `raw`: per saga, the INSERT of the saga
 * row and three guarded commits, each one prepared statement (version-checked UPDATE and the log row INSERT in
 * one data-modifying CTE), like the store's schema needs. `saga`: the same through the runner and
 * `createPostgresSagaStore`.
 */
import { createPostgresSagaStore, migrate } from '@cqrs-ts/postgres';
import pg from 'pg';
import type { Metrics } from '../../lib/types.ts';
import { RAW_CONTEXT, rawId, runnerRate, sagasPerSecond } from './sql-common.ts';

const URL = process.env.CQRS_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export async function run(variant: string): Promise<Metrics> {
  const pool = new pg.Pool({ connectionString: URL, max: 1, connectionTimeoutMillis: 2000 });
  pool.on('error', () => {});
  try {
    await pool.query('SELECT 1');
  } catch (error) {
    console.log(`note: postgres unreachable, case skipped (${(error as Error).message})`);
    await pool.end().catch(() => {});
    return {};
  }
  const sfx = `${process.pid}_${Math.floor(Math.random() * 1e6)}`;
  const tables = { saga: `bench_saga_${sfx}`, sagaLog: `bench_saga_log_${sfx}` };
  try {
    await migrate(pool, { tables });
    if (variant === 'saga')
      return { per_s: await runnerRate(createPostgresSagaStore({ client: pool, tables })) };
    if (variant !== 'raw') throw new Error(`unknown variant ${variant}`);
    const t = tables.saga;
    const create = {
      name: 'raw_create',
      text: `INSERT INTO ${t} (id, name, definition_version, status, context, cursor, version, attempts, lease_owner, lease_until, created_at, updated_at)
        VALUES ($1, 'bench-noop', 1, 'running', $2, 0, 1, 1, 'w', $3, $4, $4)`,
    };
    const commit = {
      name: 'raw_commit',
      text: `WITH u AS (UPDATE ${t} SET status = $4, context = $5, cursor = $6, version = version + 1, updated_at = $7,
          lease_owner = CASE WHEN $8::bigint IS NULL THEN NULL ELSE lease_owner END, lease_until = $8
          WHERE id = $1 AND version = $2 AND lease_owner = $3 RETURNING id),
        l AS (INSERT INTO ${tables.sagaLog} (saga_id, step_id, slot, action, status, attempts, result, started_at, at)
          SELECT u.id, $9, $6 - 1, 'act', 'completed', 1, NULL, $7, $7 FROM u RETURNING 1)
        SELECT count(*)::int AS n FROM u`,
    };
    let n = 0;
    const steps = ['reserve', 'charge', 'ship'];
    const op = async () => {
      const id = rawId(n++);
      const at = Date.now();
      await pool.query({ ...create, values: [id, RAW_CONTEXT, at + 30_000, at] });
      for (let i = 0; i < 3; i++) {
        const last = i === 2;
        const r = await pool.query({
          ...commit,
          values: [
            id,
            i + 1,
            'w',
            last ? 'completed' : 'running',
            RAW_CONTEXT,
            i + 1,
            at,
            last ? null : at + 30_000,
            steps[i],
          ],
        });
        if (r.rows[0].n !== 1) throw new Error('raw commit refused');
      }
    };
    return { per_s: await sagasPerSecond(op) };
  } finally {
    await pool.query(`DROP TABLE IF EXISTS ${tables.saga}, ${tables.sagaLog}`).catch(() => {});
    await pool.end();
  }
}
