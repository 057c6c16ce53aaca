/**
 * The `saga` suite on SQLite (node:sqlite, one WAL connection to a temporary file). `raw`: per saga, the INSERT
 * of the saga row and three guarded commits (BEGIN IMMEDIATE, version-checked UPDATE, log row INSERT, COMMIT)
 * with prepared statements, as the store's schema needs. `saga`: the same through the runner and
 * `createSqliteSagaStore`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { createSqliteSagaStore, migrate } from '@cqrs-ts/sqlite';
import type { Metrics } from '../../lib/types.ts';
import { RAW_CONTEXT, rawId, runnerRate, sagasPerSecond } from './sql-common.ts';

export async function run(variant: string): Promise<Metrics> {
  const dir = mkdtempSync(join(tmpdir(), 'cqrs-bench-saga-'));
  const db = new DatabaseSync(join(dir, 'saga.db'));
  db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;');
  const tables = { saga: 'bench_saga', sagaLog: 'bench_saga_log' };
  try {
    migrate(db, { tables });
    if (variant === 'saga')
      return { per_s: await runnerRate(createSqliteSagaStore({ database: db, tables })) };
    if (variant !== 'raw') throw new Error(`unknown variant ${variant}`);
    const create =
      db.prepare(`INSERT INTO ${tables.saga} (id, name, definition_version, status, context, cursor, version, attempts, lease_owner, lease_until, created_at, updated_at)
      VALUES (?, 'bench-noop', 1, 'running', ?, 0, 1, 1, 'w', ?, ?, ?)`);
    const update =
      db.prepare(`UPDATE ${tables.saga} SET status = ?2, context = ?3, cursor = ?4, version = version + 1, updated_at = ?5,
      lease_owner = CASE WHEN ?1 IS NULL THEN NULL ELSE lease_owner END, lease_until = ?1 WHERE id = ?6 AND version = ?7 AND lease_owner = ?8`);
    const log =
      db.prepare(`INSERT INTO ${tables.sagaLog} (saga_id, step_id, slot, action, status, attempts, result, error, started_at, at)
      VALUES (?, ?, ?, 'act', 'completed', 1, NULL, NULL, ?, ?)`);
    let n = 0;
    const steps = ['reserve', 'charge', 'ship'];
    const op = async () => {
      const id = rawId(n++);
      const at = Date.now();
      create.run(id, RAW_CONTEXT, at + 30_000, at, at);
      for (let i = 0; i < 3; i++) {
        const last = i === 2;
        db.exec('BEGIN IMMEDIATE');
        const r = update.run(
          last ? null : at + 30_000,
          last ? 'completed' : 'running',
          RAW_CONTEXT,
          i + 1,
          at,
          id,
          i + 1,
          'w',
        );
        if (Number(r.changes) !== 1) throw new Error('raw commit refused');
        log.run(id, steps[i]!, i, at, at);
        db.exec('COMMIT');
      }
    };
    return { per_s: await sagasPerSecond(op) };
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
