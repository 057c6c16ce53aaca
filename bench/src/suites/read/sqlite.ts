/** The `read` suite on SQLite (node:sqlite, a WAL file in a temporary directory). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { createOutboxEncoder } from '@cqrs-ts/core/spi';
import {
  createSqliteEventStore,
  createSqliteOutboxStore,
  createSqliteProjectionStore,
  migrate,
} from '@cqrs-ts/sqlite';
import { OrderPlaced, type ReadParts } from './common.ts';

export async function openSqlite(): Promise<ReadParts<DatabaseSync>> {
  const dir = mkdtempSync(join(tmpdir(), 'cqrs-bench-read-'));
  const db = new DatabaseSync(join(dir, 'read.db'));
  db.exec('PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000;');
  const tables = { outbox: 'bench_ob', inbox: 'bench_ib', projection: 'bench_pj' };
  migrate(db, { tables });
  db.exec('CREATE TABLE bench_model (order_id TEXT PRIMARY KEY, total INTEGER NOT NULL, n INTEGER NOT NULL)');
  db.exec(
    "CREATE TABLE bench_cp (name TEXT PRIMARY KEY, position TEXT NOT NULL); INSERT INTO bench_cp VALUES ('raw', '0')",
  );
  const upsert = db.prepare(`INSERT INTO bench_model (order_id, total, n) VALUES (?, ?, 1)
    ON CONFLICT (order_id) DO UPDATE SET total = total + excluded.total, n = n + 1`);
  const upsertOne = db.prepare(`INSERT INTO bench_model (order_id, total, n) VALUES (?, ?, ?)
    ON CONFLICT (order_id) DO UPDATE SET total = total + excluded.total, n = n + excluded.n`);
  const checkpoint = db.prepare("UPDATE bench_cp SET position = ? WHERE name = 'raw'");
  const template = createOutboxEncoder().encode(
    [OrderPlaced.create({ orderId: 'o', total: 0 })],
    Date.now(),
  )[0]!;
  return {
    log: createSqliteEventStore({ database: db, tables }),
    outbox: createSqliteOutboxStore({ database: db, tables }) as never,
    store: createSqliteProjectionStore({ database: db, tables }) as never,
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
    upsert: async (_db, orderId, total) => {
      upsert.run(orderId, total);
    },
    // SQLite runs in process: one prepared statement per row, with no await between them.
    upsertMany: async (_db, rows) => {
      for (const [id, r] of rows) upsertOne.run(id, r.total, r.n);
    },
    checkpoint: async (_db, position) => {
      checkpoint.run(position);
    },
    async truncate() {
      db.exec("DELETE FROM bench_model; UPDATE bench_cp SET position = '0'");
    },
    rows: async () =>
      Number((db.prepare('SELECT count(*) AS n FROM bench_model').all()[0] as { n: number }).n),
    async bulkSeed(n) {
      // One encoded event as the template; per row a new id, order id and total.
      const headers = JSON.stringify(template.headers);
      db.exec('BEGIN');
      db.prepare(
        `WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < ?)
         INSERT INTO bench_ob (id, type, topic, key, payload, headers, content_encoding, status, next_attempt_at, created_at)
         SELECT u, ?, ?, NULL, CAST('{"orderId":"o' || i || '","total":' || (i % 100) || '}' AS BLOB),
           json_set(?, '$.id', u), 'identity', 'published', ?, ?
         FROM (SELECT i, lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-a' ||
           substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6))) AS u FROM g)`,
      ).run(n, template.type, template.topic, headers, template.createdAt, template.createdAt);
      db.exec('COMMIT');
    },
    async close() {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
