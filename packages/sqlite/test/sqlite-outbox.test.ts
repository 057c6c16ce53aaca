import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { isCqrsError } from '@cqrs-ts/core';
import type { OutboxEncoderOptions } from '@cqrs-ts/core/spi';
import {
  createSqliteInboxGuard,
  createSqliteInboxStore,
  createSqliteOutboxStore,
  migrate,
  type SqliteDatabase,
} from '@cqrs-ts/sqlite';
import { describeInboxContract, describeOutboxStoreContract } from '@cqrs-ts/testing/contracts';
import { afterAll, describe, expect, it } from 'vitest';
import { toRecord } from '../src/sqlite-outbox-store.ts';

const dir = mkdtempSync(join(tmpdir(), 'cqrs-sqlite-'));
const file = join(dir, 'outbox.db');
const open = () => {
  const db = new DatabaseSync(file);
  db.exec('PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000;');
  return db;
};
const app = open();
const relayDb = open();
const tables = { outbox: 'ob_test', inbox: 'ib_test' };
migrate(app, { tables });
migrate(app, { tables }); // idempotent
app.exec('CREATE TABLE IF NOT EXISTS effects (id TEXT NOT NULL)');

const tx = async <T>(fn: (tx: SqliteDatabase) => Promise<T>): Promise<T> => {
  app.exec('BEGIN IMMEDIATE');
  try {
    const r = await fn(app);
    app.exec('COMMIT');
    return r;
  } catch (e) {
    app.exec('ROLLBACK');
    throw e;
  }
};
const reset = async () => {
  app.exec('DELETE FROM ob_test; DELETE FROM ib_test; DELETE FROM effects;');
};
afterAll(() => {
  app.close();
  relayDb.close();
  rmSync(dir, { recursive: true, force: true });
});

describeOutboxStoreContract<SqliteDatabase>('sqlite', async () => ({
  store: (options?: OutboxEncoderOptions) =>
    createSqliteOutboxStore({ database: relayDb, tables, ownConnection: true, ...options }),
  tx,
  async rollback(fn) {
    app.exec('BEGIN');
    try {
      await fn(app);
    } finally {
      app.exec('ROLLBACK');
    }
  },
  async withClosedTx(fn) {
    app.exec('BEGIN');
    app.exec('COMMIT');
    await fn(app);
  },
  missingTableStore: () => createSqliteOutboxStore({ database: relayDb, tables: { outbox: 'nope_missing' } }),
  async rows() {
    return (app.prepare('SELECT * FROM ob_test ORDER BY seq').all() as never[]).map(toRecord);
  },
  async appendUnreadable(events, damage) {
    const store = createSqliteOutboxStore({ database: app, tables });
    await tx((t) => store.append(t, events));
    const set = {
      headers: `headers = 'not json'`,
      payload: `content_encoding = 'gzip', payload = x'010203'`,
      'content-encoding': `content_encoding = 'zstd'`,
    }[damage];
    const update = app.prepare(`UPDATE ob_test SET ${set} WHERE id = ?`);
    for (const e of events) update.run(e.metadata.requestId);
  },
  reset,
  async close() {},
}));

describeInboxContract<SqliteDatabase>('sqlite', async () => ({
  inbox: createSqliteInboxStore({ database: relayDb, tables }),
  tx,
  async recordEffect(t, id) {
    t.prepare('INSERT INTO effects (id) VALUES (?)').run(id);
  },
  async effects() {
    return Number((app.prepare('SELECT COUNT(*) AS n FROM effects').get() as { n: number }).n);
  },
  concurrentTransactions: false,
  guard: () => createSqliteInboxGuard({ database: app, tables }),
  guardWithoutTable: () => createSqliteInboxGuard({ database: app, tables: { inbox: 'nope_missing' } }),
  reset,
  async close() {},
}));

describe('sqlite schema', () => {
  it('rejects table names that could inject SQL', () => {
    expect(() => migrate(app, { tables: { outbox: 'x; DROP TABLE y' } })).toThrow(/invalid table name/);
    const err = (() => {
      try {
        createSqliteOutboxStore({ database: app, tables: { inbox: 'a"b' } });
      } catch (e) {
        return e;
      }
    })();
    expect(isCqrsError(err, 'CQRS_CONFIGURATION')).toBe(true);
  });
});

describe('sqlite transaction mode', () => {
  it('is offered only for a connection the store owns, and refuses one inside a foreign transaction', async () => {
    expect(createSqliteOutboxStore({ database: relayDb, tables }).processLocked).toBeUndefined();
    const own = createSqliteOutboxStore({ database: relayDb, tables, ownConnection: true });
    expect(typeof own.processLocked).toBe('function');
    relayDb.exec('BEGIN');
    try {
      const err = await own.processLocked!({ limit: 1, now: Date.now() }, async () => undefined).catch(
        (e) => e,
      );
      expect(isCqrsError(err, 'CQRS_CONFIGURATION')).toBe(true);
      expect((err as Error).message).toMatch(/inside a transaction/);
    } finally {
      relayDb.exec('ROLLBACK');
    }
  });
});
