/** The `outbox` suite on SQLite (node:sqlite, a WAL file in a temporary directory). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { createSqliteOutboxStore, migrate } from '@cqrs-ts/sqlite';
import { type OutboxTarget, outboxTarget } from './common.ts';

export async function openSqlite(): Promise<OutboxTarget> {
  const dir = mkdtempSync(join(tmpdir(), 'cqrs-bench-'));
  const db = new DatabaseSync(join(dir, 'outbox.db'));
  db.exec('PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000;');
  const tables = { outbox: 'bench_ob', inbox: 'bench_ib' };
  migrate(db, { tables });
  db.exec('CREATE TABLE bench_biz (id INTEGER PRIMARY KEY, note TEXT NOT NULL)');
  const store = createSqliteOutboxStore({ database: db, tables });
  const insert = db.prepare('INSERT INTO bench_biz (note) VALUES (?)');
  const claim = db.prepare(
    `UPDATE bench_ob SET status = 'published', published_at = ?
     WHERE seq IN (SELECT seq FROM bench_ob WHERE status = 'pending' ORDER BY seq LIMIT ?) RETURNING seq`,
  );
  const tx = async (fn: (c: DatabaseSync) => Promise<void>) => {
    db.exec('BEGIN IMMEDIATE');
    try {
      await fn(db);
      db.exec('COMMIT');
    } catch (error) {
      db.exec('ROLLBACK');
      throw error;
    }
  };
  return outboxTarget({
    store,
    tx,
    insertBusiness: () => insert.run('order placed'),
    async rawClaim(limit) {
      return claim.all(Date.now(), limit).length;
    },
    async close() {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  });
}
