/** The `write` suite on SQLite (node:sqlite, a WAL file in a temporary directory). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import {
  createSqliteEventStore,
  createSqliteOutboxStore,
  createSqliteUnitOfWork,
  migrate,
} from '@cqrs-ts/sqlite';
import type { WriteParts } from './common.ts';
import type { EventAppendParts } from './event-append.ts';

export async function openSqlite(): Promise<WriteParts<DatabaseSync> & EventAppendParts<DatabaseSync>> {
  const dir = mkdtempSync(join(tmpdir(), 'cqrs-bench-write-'));
  const db = new DatabaseSync(join(dir, 'app.db'));
  db.exec('PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000;');
  const tables = { outbox: 'bench_ob', inbox: 'bench_ib' };
  migrate(db, { tables });
  db.exec('CREATE TABLE bench_biz (id INTEGER PRIMARY KEY, note TEXT NOT NULL)');
  const store = createSqliteOutboxStore({ database: db, tables });
  const insert = db.prepare('INSERT INTO bench_biz (note) VALUES (?)');
  const newStream = db.prepare(
    'INSERT INTO bench_ob_stream (stream_id, version, created_at, updated_at) VALUES (?, 1, ?, ?)',
  );
  const moveStream = db.prepare(
    'UPDATE bench_ob_stream SET version = version + 1, updated_at = ? WHERE stream_id = ? AND version = ?',
  );
  const insertEvent = db.prepare(
    `INSERT INTO bench_ob (id, type, topic, key, payload, headers, content_encoding, next_attempt_at, created_at, stream_id, stream_version)
     VALUES (?, ?, ?, ?, ?, ?, 'identity', ?, ?, ?, ?)`,
  );
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
    eventStore: createSqliteEventStore({ database: db, tables }),
    async rawAppend(c, r, expected) {
      const head =
        expected === 0
          ? newStream.run(r.streamId, r.createdAt, r.createdAt)
          : moveStream.run(r.createdAt, r.streamId, expected);
      if (Number(head.changes) !== 1) throw new Error(`stream ${r.streamId} is not at version ${expected}`);
      insertEvent.run(
        r.id,
        r.type,
        r.topic,
        r.key,
        r.payload,
        r.headers,
        r.createdAt,
        r.createdAt,
        r.streamId,
        expected + 1,
      );
      void c;
    },
    async close() {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
