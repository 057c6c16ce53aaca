/**
 * The `saga` suite on MariaDB (mysql2 pool of one connection). `raw`: per saga, the INSERT of the saga row and
 * three guarded commits, each a transaction (START TRANSACTION, version-checked UPDATE, log row INSERT, COMMIT)
 * as the store's schema needs. `saga`: the same through the runner and `createMysqlSagaStore`.
 */
import { createMysqlSagaStore, migrate } from '@cqrs-ts/mysql';
import mysql from 'mysql2/promise';
import type { Metrics } from '../../lib/types.ts';
import { RAW_CONTEXT, rawId, runnerRate, sagasPerSecond } from './sql-common.ts';

const URL = process.env.CQRS_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

export async function run(variant: string): Promise<Metrics> {
  const pool = mysql.createPool({ uri: URL, connectionLimit: 1, connectTimeout: 2000 });
  try {
    await pool.query('SELECT 1');
  } catch (error) {
    console.log(`note: mariadb unreachable, case skipped (${(error as Error).message})`);
    await pool.end().catch(() => {});
    return {};
  }
  const sfx = `${process.pid}_${Math.floor(Math.random() * 1e6)}`;
  const tables = { saga: `bench_saga_${sfx}`, sagaLog: `bench_saga_log_${sfx}` };
  try {
    await migrate(pool, { tables });
    if (variant === 'saga')
      return { per_s: await runnerRate(createMysqlSagaStore({ client: pool, tables })) };
    if (variant !== 'raw') throw new Error(`unknown variant ${variant}`);
    const create = `INSERT INTO ${tables.saga} (id, name, definition_version, status, context, \`cursor\`, version, attempts, lease_owner, lease_until, created_at, updated_at)
      VALUES (?, 'bench-noop', 1, 'running', ?, 0, 1, 1, 'w', ?, ?, ?)`;
    const update = `UPDATE ${tables.saga} SET status = ?, context = ?, \`cursor\` = ?, version = version + 1, updated_at = ?,
      lease_owner = IF(? IS NULL, NULL, lease_owner), lease_until = ? WHERE id = ? AND version = ? AND lease_owner = ?`;
    const log = `INSERT INTO ${tables.sagaLog} (saga_id, step_id, slot, action, status, attempts, result, error, started_at, at)
      VALUES (?, ?, ?, 'act', 'completed', 1, NULL, NULL, ?, ?)`;
    let n = 0;
    const steps = ['reserve', 'charge', 'ship'];
    const op = async () => {
      const id = rawId(n++);
      const at = Date.now();
      await pool.query(create, [id, RAW_CONTEXT, at + 30_000, at, at]);
      for (let i = 0; i < 3; i++) {
        const last = i === 2;
        const until = last ? null : at + 30_000;
        const c = await pool.getConnection();
        try {
          await c.query('START TRANSACTION');
          const [r] = await c.query(update, [
            last ? 'completed' : 'running',
            RAW_CONTEXT,
            i + 1,
            at,
            until,
            until,
            id,
            i + 1,
            'w',
          ]);
          if ((r as { affectedRows: number }).affectedRows !== 1) throw new Error('raw commit refused');
          await c.query(log, [id, steps[i], i, at, at]);
          await c.query('COMMIT');
        } finally {
          c.release();
        }
      }
    };
    return { per_s: await sagasPerSecond(op) };
  } finally {
    await pool.query(`DROP TABLE IF EXISTS ${tables.saga}, ${tables.sagaLog}`).catch(() => {});
    await pool.end();
  }
}
