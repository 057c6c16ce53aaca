import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { fileURLToPath } from 'node:url';
import type { AnyEvent } from '@cqrs-ts/core';
import { uuidv7 } from '@cqrs-ts/core/spi';
import { createSqliteOutboxStore, createSqliteSagaStore, migrate } from '@cqrs-ts/sqlite';
import {
  describeSagaStoreContract,
  describeSqlSagaStoreContract,
  SagaStepDone,
} from '@cqrs-ts/testing/contracts';
import { afterAll, describe, expect, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'cqrs-sqlite-saga-'));
const file = join(dir, 'saga.db');
const open = () => {
  const db = new DatabaseSync(file);
  db.exec('PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000;');
  return db;
};
const db = open();
const opened = [db];
afterAll(() => {
  for (const c of opened) c.close();
  rmSync(dir, { recursive: true, force: true });
});
const tables = { outbox: 'sob', inbox: 'sib', saga: 'sg', sagaLog: 'sgl' };
migrate(db, { tables });
migrate(db, { tables }); // idempotent
const count = (t: string) => Number((db.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n);

describeSagaStoreContract('sqlite', async () => ({
  store: () => createSqliteSagaStore({ database: db, tables }),
  outbox: {
    store: () =>
      createSqliteSagaStore({
        database: db,
        tables,
        outbox: createSqliteOutboxStore({ database: db, tables }),
      }),
    rows: async () => count(tables.outbox),
  },
  async reset() {
    db.exec(`DELETE FROM ${tables.saga}; DELETE FROM ${tables.sagaLog}; DELETE FROM ${tables.outbox};`);
  },
  async close() {},
}));

// #region sql-saga-store-contract
const xt = { outbox: 'xob', inbox: 'xib', saga: 'xsg', sagaLog: 'xsgl' };
migrate(db, { tables: xt });
describeSqlSagaStoreContract('sqlite', async () => ({
  store: (options) =>
    createSqliteSagaStore({ database: db, tables: xt, maxTextBytes: 64 * 1024, ...options }),
  storeWithTinyOutbox: () =>
    createSqliteSagaStore({
      database: db,
      tables: xt,
      outbox: createSqliteOutboxStore({ database: db, tables: xt, maxPayloadBytes: 100 }),
    }),
  outboxRows: async () => count(xt.outbox),
  storeWithTables: (t) => createSqliteSagaStore({ database: db, tables: t }),
  migrateWith: async (t) => migrate(db, { tables: t }),
  // Connections of their own: each store writes through its own connection to the same file.
  writers: (n) =>
    Array.from({ length: n }, () => {
      const c = open();
      opened.push(c);
      return createSqliteSagaStore({ database: c, tables: xt });
    }),
  async corruptNumbers(sagaId, logSagaId) {
    db.prepare(`UPDATE ${xt.saga} SET version = 9007199254740993 WHERE id = ?`).run(sagaId);
    db.prepare(`UPDATE ${xt.sagaLog} SET started_at = -9223372036854775807 WHERE saga_id = ?`).run(logSagaId);
  },
  async corruptEnums(sagaId, logSagaId) {
    // SQLite cannot drop a CHECK constraint: write as a tool that ignores them would.
    db.exec('PRAGMA ignore_check_constraints = ON');
    try {
      db.prepare(`UPDATE ${xt.saga} SET version = 2, status = 'zombie' WHERE id = ?`).run(sagaId);
      db.prepare(`UPDATE ${xt.sagaLog} SET started_at = 1, action = 'undo' WHERE saga_id = ?`).run(logSagaId);
    } finally {
      db.exec('PRAGMA ignore_check_constraints = OFF');
    }
  },
  async close() {},
}));
// #endregion sql-saga-store-contract

describe('sqlite saga store', () => {
  it('refuses values of the wrong type at the table (STRICT) and reads the recovery index', () => {
    expect(() =>
      db
        .prepare(
          `INSERT INTO ${tables.saga} VALUES ('x', 'n', 'one', 'running', '{}', 0, 1, 1, NULL, NULL, NULL, NULL, 0, 0)`,
        )
        .run(),
    ).toThrow(/cannot store TEXT value in INTEGER column/);
    const plan = db
      .prepare(
        `EXPLAIN QUERY PLAN SELECT * FROM ${tables.saga} WHERE status IN ('running', 'compensating')
           AND (lease_owner IS NULL OR lease_until < 5) AND updated_at <= 5 ORDER BY updated_at, id LIMIT 10`,
      )
      .all() as { detail: string }[];
    expect(plan.map((p) => p.detail).join('\n')).toContain(`${tables.saga}_recoverable`);
  });

  it('a commit with events holds the connection: other calls on it wait, none joins its transaction', async () => {
    const s = createSqliteSagaStore({
      database: db,
      tables,
      outbox: createSqliteOutboxStore({ database: db, tables }),
    });
    const base = { name: 'orders', definitionVersion: 1, context: '{}', owner: 'w', now: 1, leaseMs: 1000 };
    const a = uuidv7();
    const b = uuidv7();
    await s.create({ ...base, id: a, deadlineAt: null });
    await s.create({ ...base, id: b, deadlineAt: null });
    const commit = (id: string, events: AnyEvent[]) =>
      s.commit({
        id,
        owner: 'w',
        expectedVersion: 1,
        now: 2,
        status: 'running',
        context: '{"n":1}',
        cursor: 1,
        error: null,
        log: [],
        events,
        lease: 1000,
      });
    const ev = (n: number) => SagaStepDone.create({ sagaId: a, n }) as AnyEvent;
    // Interleave: two commits with events and plain calls, all started in the same tick.
    const results = await Promise.all([
      commit(a, [ev(1), ev(2)]),
      s.load(a),
      commit(b, [ev(3)]),
      s.acquire({ id: uuidv7(), owner: 'w', now: 3, leaseMs: 1 }),
      s.history(a),
    ]);
    expect(results[0]).toBe(2);
    expect(results[2]).toBe(2);
    expect(results[1]).toMatchObject({ version: 2, context: '{"n":1}' });
    expect((db as unknown as { isTransaction: boolean }).isTransaction).toBe(false);
  });

  it('processes contending for the same sagas: exactly one acquires each, exactly one commits each', async () => {
    const s = createSqliteSagaStore({ database: db, tables });
    const base = {
      name: 'orders',
      definitionVersion: 1,
      context: '{}',
      now: 1,
      leaseMs: 1,
      deadlineAt: null,
    };
    const acquireIds: string[] = [];
    const commitIds: string[] = [];
    for (let i = 0; i < 150; i++) {
      const a = uuidv7();
      await s.create({ ...base, id: a, owner: 'gone' }); // lease expired long ago
      acquireIds.push(a);
      const c = uuidv7();
      await s.create({ ...base, id: c, owner: 'shared' });
      await s.acquire({ id: c, owner: 'shared', now: 2, leaseMs: 1e12 }); // version 2, held by 'shared'
      commitIds.push(c);
    }
    const fixture = fileURLToPath(new URL('./fixtures/saga-contender.ts', import.meta.url));
    const contenders = [0, 1, 2, 3];
    const rotate = (n: number, ids: string[]) => [...ids.slice(n * 37), ...ids.slice(0, n * 37)];
    // Two barriers: all start together (`go`), and none goes past its first id until every one has tried its
    // own first id (`continue`). The first ids differ, so each contender wins at least that one: the four
    // processes really run at once, whatever the scheduler does.
    const barrier = (count: number) => {
      let reached = 0;
      let open: () => void = () => {};
      const opened = new Promise<void>((r) => {
        open = r;
      });
      return { opened, reach: () => ++reached === count && open() };
    };
    const started = barrier(contenders.length);
    const firstTried = barrier(contenders.length);
    const outputs = await Promise.all(
      contenders.map(
        (n) =>
          new Promise<{ acquired: string[]; committed: string[] }>((resolve, reject) => {
            const child = spawn(process.execPath, ['--conditions=@cqrs-ts/source', fixture, file, `p${n}`], {
              stdio: ['pipe', 'pipe', 'inherit'],
            });
            let out = '';
            let seen = 0;
            child.stdout.on('data', (d) => {
              out += d;
              const lines = out.split('\n');
              for (; seen < lines.length - 1; seen++) {
                if (lines[seen] === 'ready') started.reach();
                else if (lines[seen] === 'first') firstTried.reach();
              }
            });
            child.on('error', reject);
            child.on('exit', (code) =>
              code === 0
                ? resolve(JSON.parse(out.split('\n').at(-2) ?? ''))
                : reject(new Error(`contender exited ${code}`)),
            );
            child.stdin.write(
              `${JSON.stringify({ tables, acquireIds: rotate(n, acquireIds), commitIds: rotate(n, commitIds) })}\n`,
            );
            void started.opened.then(() => child.stdin.write('go\n'));
            void firstTried.opened.then(() => child.stdin.end('continue\n'));
          }),
      ),
    );
    const acquired = outputs.flatMap((o) => o.acquired).sort();
    const committed = outputs.flatMap((o) => o.committed).sort();
    expect(acquired).toEqual([...acquireIds].sort());
    expect(committed).toEqual([...commitIds].sort());
    // They did contend: each won its own first id, so no single process ran through the whole list alone.
    for (const n of contenders) expect(outputs[n]!.acquired).toContain(rotate(n, acquireIds)[0]);
    for (const id of commitIds.slice(0, 20)) {
      const log = await s.history(id);
      expect(log).toHaveLength(1);
      expect((await s.load(id))?.context).toBe(JSON.stringify({ by: log[0]!.stepId }));
    }
  }, 60_000);
});
