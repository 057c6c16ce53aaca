import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { processOnce } from '@cqrs-ts/core';
import { createSqliteInboxStore, migrate, type SqliteDatabase } from '@cqrs-ts/sqlite';
import { describe, expect, it } from 'vitest';

// Issue 12: CloudEvents identity is source + id. An inbox table made by an earlier version (no source column,
// key (message_id, consumer)) is rebuilt with it; its marks keep deduplicating and a second source's event with
// a reused id is handled.
describe('issue 12: sqlite inbox keyed by source and id', () => {
  it('rebuilds an inbox table made before the source column, keeping its marks', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cqrs-i12-'));
    const db = new DatabaseSync(join(dir, 'inbox.db'));
    try {
      const tables = { outbox: 'ob_i12', inbox: 'ib_i12' };
      db.exec(`CREATE TABLE ib_i12 (message_id TEXT NOT NULL, consumer TEXT NOT NULL,
        processed_at INTEGER NOT NULL, fingerprint TEXT, result TEXT, PRIMARY KEY (message_id, consumer))
        WITHOUT ROWID;
        CREATE INDEX ib_i12_processed_at ON ib_i12 (processed_at);
        INSERT INTO ib_i12 VALUES ('order-1', 'billing', 1, 'f', 'r');
        CREATE TABLE effects (id TEXT NOT NULL);`);
      migrate(db, { tables });
      migrate(db, { tables }); // idempotent
      const key = db.prepare(`SELECT name FROM pragma_table_info('ib_i12') WHERE pk > 0 ORDER BY name`).all();
      expect(key.map((r) => r.name)).toEqual(['consumer', 'message_id', 'source']);
      expect(db.prepare('SELECT fingerprint, result FROM ib_i12').get()).toEqual({
        fingerprint: 'f',
        result: 'r',
      });
      const inbox = createSqliteInboxStore({ database: db, tables });
      const mark = async (source?: string) => {
        db.exec('BEGIN');
        const r = await processOnce(
          inbox,
          db as SqliteDatabase,
          'order-1',
          'billing',
          (t) => void t.prepare('INSERT INTO effects VALUES (?)').run('order-1'),
          source,
        );
        db.exec('COMMIT');
        return r.status;
      };
      expect(await mark()).toBe('duplicate'); // the old mark still counts
      expect(await mark('urn:shop:eu')).toBe('processed');
      expect(await mark('urn:shop:us')).toBe('processed');
      expect(await mark('urn:shop:eu')).toBe('duplicate');
      expect((db.prepare('SELECT COUNT(*) AS n FROM effects').get() as { n: number }).n).toBe(2);
      expect(await inbox.purge(2)).toBe(1); // the index on processed_at was rebuilt with the table
    } finally {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
