import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import {
  createSqliteEventStore,
  createSqliteStateRepository,
  createSqliteUnitOfWork,
  migrate,
  type SqliteDatabase,
} from '@cqrs-ts/sqlite';
import {
  type ContractAccount,
  describeEventStoreContract,
  describeStateRepositoryContract,
} from '@cqrs-ts/testing/contracts';
import { afterAll } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'cqrs-sqlite-es-'));
const file = join(dir, 'log.db');
const open = () => {
  const db = new DatabaseSync(file);
  db.exec('PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000;');
  return db;
};
const app = open();
const reader = open();
const tables = { outbox: 'es_log', inbox: 'es_inbox' };
migrate(app, { tables });
migrate(app, { tables });
app.exec(
  'CREATE TABLE acct_columns (id TEXT PRIMARY KEY, version INTEGER NOT NULL, owner TEXT NOT NULL, balance REAL NOT NULL, tags TEXT NOT NULL)',
);
app.exec('CREATE TABLE acct_json (id TEXT PRIMARY KEY, version INTEGER NOT NULL, state TEXT NOT NULL)');
afterAll(() => {
  app.close();
  reader.close();
  rmSync(dir, { recursive: true, force: true });
});

/** One transaction at a time on the application's connection, as an application on one connection runs them. */
let queue: Promise<unknown> = Promise.resolve();
const serial = <T>(fn: () => Promise<T>): Promise<T> => {
  const next = queue.then(fn, fn);
  queue = next.catch(() => {});
  return next;
};
const tx = <T>(fn: (tx: SqliteDatabase) => Promise<T>): Promise<T> =>
  serial(async () => {
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
const rollback = (fn: (tx: SqliteDatabase) => Promise<void>): Promise<void> =>
  serial(async () => {
    app.exec('BEGIN IMMEDIATE');
    try {
      await fn(app);
    } finally {
      app.exec('ROLLBACK');
    }
  });

describeEventStoreContract<SqliteDatabase>('sqlite', async () => ({
  store: (options) =>
    createSqliteEventStore({ database: reader, tables, archive: options?.archive ?? false }),
  tx,
  rollback,
  concurrentTransactions: false,
  unitOfWork: (store) => createSqliteUnitOfWork({ database: app, outbox: store.outbox, tables }) as never,
  async reset() {
    app.exec('DELETE FROM es_log; DELETE FROM es_log_archive; DELETE FROM es_log_stream;');
  },
  async close() {},
}));

for (const mapping of ['columns', 'json'] as const) {
  const table = `acct_${mapping}`;
  const repository =
    mapping === 'columns'
      ? createSqliteStateRepository<ContractAccount>({
          name: 'account',
          table,
          columns: ['owner', 'balance', 'tags'],
          toRow: (s) => ({ owner: s.owner, balance: s.balance, tags: JSON.stringify(s.tags) }),
          fromRow: (r) => ({
            owner: r.owner as string,
            balance: Number(r.balance),
            tags: JSON.parse(r.tags as string),
          }),
        })
      : createSqliteStateRepository<ContractAccount>({ name: 'account', table });
  describeStateRepositoryContract<SqliteDatabase>(`sqlite (${mapping})`, async () => ({
    repository: () => repository,
    tx,
    rollback,
    async reset() {
      app.exec(`DELETE FROM ${table}`);
    },
    async close() {},
  }));
}
