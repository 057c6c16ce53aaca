import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { fileURLToPath } from 'node:url';
import {
  createSqliteEventStore,
  createSqliteProjectionStore,
  createSqliteUnitOfWork,
  migrate,
  type SqliteDatabase,
} from '@cqrs-ts/sqlite';
import { describeProjectionContract } from '@cqrs-ts/testing/contracts';
import { afterAll } from 'vitest';
import { serialize } from '../src/sqlite-connection-lock.ts';
import { sqliteCounters } from './projection-support.ts';

const fixture = fileURLToPath(new URL('./fixtures/projection-child.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'cqrs-sqlite-pj-'));
const file = join(dir, 'read.db');
const open = () => {
  const db = new DatabaseSync(file);
  db.exec('PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000;');
  return db;
};
const app = open();
const reader = open();
const tables = { outbox: 'pj_log', inbox: 'pj_inbox', projection: 'pj_projection' };
migrate(app, { tables });
const prefix = 'pjc';
afterAll(() => {
  app.close();
  reader.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A transaction on the application's connection, queued with the package's own (unit of work, store). */
const tx = <T>(fn: (tx: SqliteDatabase) => Promise<T>): Promise<T> =>
  serialize(app, async () => {
    app.exec('BEGIN IMMEDIATE');
    try {
      const r = await fn(app);
      app.exec('COMMIT');
      return r;
    } catch (e) {
      app.exec('ROLLBACK');
      throw e;
    }
  });

describeProjectionContract<SqliteDatabase>('sqlite', async () => {
  const log = createSqliteEventStore({ database: reader, tables });
  return {
    eventStore: () => log,
    projectionStore: () => createSqliteProjectionStore({ database: app, tables }),
    tx,
    counters: sqliteCounters(app, prefix),
    unitOfWork: (store, projections) =>
      createSqliteUnitOfWork({ database: app, outbox: store.outbox, tables, projections }) as never,
    concurrentTransactions: false,
    spawnRunner: (args) =>
      spawn(process.execPath, ['--conditions=@cqrs-ts/source', fixture], {
        env: { ...process.env, CQRS_PROJECTION_CHILD: JSON.stringify({ ...args, file, tables, prefix }) },
        stdio: ['ignore', 'pipe', 'inherit'],
      }),
    async reset() {
      app.exec(
        'DELETE FROM pj_log; DELETE FROM pj_log_archive; DELETE FROM pj_log_stream; DELETE FROM pj_projection; DELETE FROM pj_projection_doc; DELETE FROM pj_projection_parked;',
      );
    },
    async close() {},
  };
});
