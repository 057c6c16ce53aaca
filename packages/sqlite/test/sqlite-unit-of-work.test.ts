import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { createMediator, defineCommand, handle, isCqrsError, type UnitOfWork } from '@cqrs-ts/core';
import { IDEMPOTENCY_CONSUMER } from '@cqrs-ts/core/spi';
import {
  createSqliteInboxGuard,
  createSqliteOutboxStore,
  createSqliteUnitOfWork,
  migrate,
  type SqliteDatabase,
} from '@cqrs-ts/sqlite';
import { describeUnitOfWorkContract } from '@cqrs-ts/testing/contracts';
import { afterAll, describe, expect, expectTypeOf, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'cqrs-sqlite-uow-'));
const file = join(dir, 'app.db');
const open = () => {
  const db = new DatabaseSync(file);
  db.exec('PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000;');
  return db;
};
const tables = { outbox: 'ob_uow', inbox: 'ib_uow' };

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describeUnitOfWorkContract<SqliteDatabase>('sqlite', async () => {
  const app = open();
  // Reads go through a second connection: it sees committed rows only.
  const reader = open();
  migrate(app, { tables });
  app.exec('CREATE TABLE IF NOT EXISTS items (id TEXT NOT NULL)');
  const outbox = createSqliteOutboxStore({ database: reader, tables });
  const all = (sql: string, ...params: string[]) =>
    reader.prepare(sql).all(...params) as Record<string, unknown>[];
  return {
    exclusive: true,
    unitOfWork: (options) =>
      createSqliteUnitOfWork({
        database: app,
        outbox,
        tables,
        ...(options?.idempotency === false ? { idempotency: false } : {}),
      }),
    async insertRow(tx, id) {
      tx.prepare('INSERT INTO items (id) VALUES (?)').run(id);
    },
    rows: async () => all('SELECT id FROM items ORDER BY id').map((r) => r.id as string),
    outbox: async () => all('SELECT id FROM ob_uow ORDER BY seq').map((r) => r.id as string),
    idempotencyRecords: async () =>
      Number(all('SELECT count(*) AS n FROM ib_uow WHERE consumer = ?', IDEMPOTENCY_CONSUMER)[0]!.n),
    async reset() {
      app.exec('DELETE FROM items; DELETE FROM ob_uow; DELETE FROM ib_uow;');
    },
    async close() {
      app.close();
      reader.close();
    },
  };
});

const Place = defineCommand('sqlite-uow.place').withPayload<{ id: string }>().returns<string>();

describe('sqlite unit of work', () => {
  it('gives handlers the connection, typed as the one passed in', () => {
    const db = new DatabaseSync(':memory:');
    const uow = createSqliteUnitOfWork({ database: db, outbox: createSqliteOutboxStore({ database: db }) });
    expectTypeOf(uow).toEqualTypeOf<UnitOfWork<DatabaseSync>>();
    db.close();
  });

  it('refuses a missing database or outbox at start-up', () => {
    const db = new DatabaseSync(':memory:');
    const outbox = createSqliteOutboxStore({ database: db });
    for (const options of [
      { outbox },
      { database: {}, outbox },
      { database: db },
      { database: db, outbox: {} },
    ]) {
      let error: unknown;
      try {
        createSqliteUnitOfWork(options as never);
      } catch (e) {
        error = e;
      }
      expect(isCqrsError(error, 'CQRS_CONFIGURATION')).toBe(true);
    }
    db.close();
  });

  it('queues commands on the connection: concurrent units never share a transaction', async () => {
    const db = open();
    migrate(db, { tables });
    db.exec('CREATE TABLE IF NOT EXISTS items (id TEXT NOT NULL); DELETE FROM items;');
    const uow = createSqliteUnitOfWork({
      database: db,
      outbox: createSqliteOutboxStore({ database: db, tables }),
    });
    let inside = 0;
    let most = 0;
    const mediator = createMediator({
      behaviors: [uow],
      handlers: [
        handle(Place, async (cmd, ctx) => {
          most = Math.max(most, ++inside);
          uow.transaction(ctx).prepare('INSERT INTO items (id) VALUES (?)').run(cmd.payload.id);
          await new Promise<void>((resolve) => setImmediate(resolve));
          if (cmd.payload.id.endsWith('!')) {
            inside--;
            throw new Error('refused');
          }
          inside--;
          return cmd.payload.id;
        }),
      ],
    });
    const results = await Promise.allSettled(
      ['a', 'b!', 'c', 'd!', 'e'].map((id) => mediator.send(Place.create({ id }))),
    );
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'rejected',
      'fulfilled',
      'rejected',
      'fulfilled',
    ]);
    expect(most).toBe(1);
    expect(
      (db.prepare('SELECT id FROM items ORDER BY id').all() as { id: string }[]).map((r) => r.id),
    ).toEqual(['a', 'c', 'e']);
    db.close();
  });

  it('reports a connection already inside a transaction as a StorageError and runs nothing', async () => {
    const db = new DatabaseSync(':memory:');
    migrate(db);
    const uow = createSqliteUnitOfWork({ database: db, outbox: createSqliteOutboxStore({ database: db }) });
    let ran = false;
    const mediator = createMediator({
      behaviors: [uow],
      handlers: [
        handle(Place, (cmd) => {
          ran = true;
          return cmd.payload.id;
        }),
      ],
    });
    db.exec('BEGIN');
    const error = await mediator.send(Place.create({ id: 'a' })).catch((e: unknown) => e);
    expect(isCqrsError(error, 'CQRS_STORAGE')).toBe(true);
    expect(ran).toBe(false);
    db.exec('ROLLBACK');
    db.close();
  });

  it('adds the idempotency columns to an inbox table made by an older version', () => {
    const db = new DatabaseSync(':memory:');
    db.exec(
      'CREATE TABLE old_inbox (message_id TEXT NOT NULL, consumer TEXT NOT NULL, processed_at INTEGER NOT NULL, PRIMARY KEY (message_id, consumer)) WITHOUT ROWID',
    );
    migrate(db, { tables: { inbox: 'old_inbox' } });
    migrate(db, { tables: { inbox: 'old_inbox' } });
    const columns = (
      db.prepare("SELECT name FROM pragma_table_info('old_inbox')").all() as { name: string }[]
    ).map((c) => c.name);
    expect(columns).toEqual(['message_id', 'consumer', 'processed_at', 'fingerprint', 'result', 'source']);
    db.close();
  });

  it('keeps the inbox guard working on the inbox table with the new columns', async () => {
    const db = new DatabaseSync(':memory:');
    migrate(db);
    const guard = createSqliteInboxGuard({ database: db });
    let runs = 0;
    expect(await guard.once('m-1', 'shipping', async () => void runs++)).toBe(true);
    expect(await guard.once('m-1', 'shipping', async () => void runs++)).toBe(false);
    expect(runs).toBe(1);
    db.close();
  });
});
