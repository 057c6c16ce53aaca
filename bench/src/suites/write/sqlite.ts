/** The `write` suite on SQLite (node:sqlite, a WAL file in a temporary directory). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { createSqliteOutboxStore, createSqliteUnitOfWork, migrate } from '@cqrs-ts/sqlite';
import type { WriteParts } from './common.ts';

export async function openSqlite(): Promise<WriteParts<DatabaseSync>> {
  const dir = mkdtempSync(join(tmpdir(), 'cqrs-bench-write-'));
  const db = new DatabaseSync(join(dir, 'app.db'));
  db.exec('PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000;');
  const tables = { outbox: 'bench_ob', inbox: 'bench_ib' };
  migrate(db, { tables });
  db.exec('CREATE TABLE bench_biz (id INTEGER PRIMARY KEY, note TEXT NOT NULL)');
  const store = createSqliteOutboxStore({ database: db, tables });
  const insert = db.prepare('INSERT INTO bench_biz (note) VALUES (?)');
  return {
    store,
    async tx(fn) {
      db.exec('BEGIN IMMEDIATE');
      try {
        await fn(db);
        db.exec('COMMIT');
      } catch (error) {
        db.exec('ROLLBACK');
        throw error;
      }
    },
    insertBusiness: () => insert.run('order placed'),
    unitOfWork: createSqliteUnitOfWork({ database: db, outbox: store, tables }),
    async close() {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
