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
  // The relay's own connection, as the sqlite README recommends: it gives the store transaction mode.
  const relayDb = new DatabaseSync(join(dir, 'outbox.db'));
  relayDb.exec('PRAGMA busy_timeout = 5000;');
  const tables = { outbox: 'bench_ob', inbox: 'bench_ib' };
  migrate(db, { tables });
  db.exec('CREATE TABLE bench_biz (id INTEGER PRIMARY KEY, note TEXT NOT NULL)');
  const store = createSqliteOutboxStore({ database: relayDb, tables, ownConnection: true });
  const insert = db.prepare('INSERT INTO bench_biz (note) VALUES (?)');
  const select = db.prepare(
    `SELECT seq, id, type, topic, key, payload, headers, content_encoding FROM bench_ob
     WHERE status = 'pending' ORDER BY seq LIMIT ?`,
  );
  const marks = new Map<number, ReturnType<DatabaseSync['prepare']>>();
  const mark = (n: number) => {
    let s = marks.get(n);
    if (s === undefined) {
      s = db.prepare(
        `UPDATE bench_ob SET status = 'published', published_at = ? WHERE seq IN (${Array(n).fill('?').join(',')})`,
      );
      marks.set(n, s);
    }
    return s;
  };
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
      // One write transaction: read the rows a publisher needs (headers as an object), then mark them.
      db.exec('BEGIN IMMEDIATE');
      try {
        const rows = select.all(limit) as { seq: number; headers: string }[];
        for (const r of rows) JSON.parse(r.headers);
        if (rows.length > 0) mark(rows.length).run(Date.now(), ...rows.map((r) => r.seq));
        db.exec('COMMIT');
        return rows.length;
      } catch (error) {
        db.exec('ROLLBACK');
        throw error;
      }
    },
    async close() {
      relayDb.close();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  });
}
