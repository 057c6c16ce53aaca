import { createMediator, defineCommand, handle, isCqrsError, type Mediator } from '@cqrs-ts/core';
import { createPostgresOutboxStore, createPostgresUnitOfWork, migrate } from '@cqrs-ts/postgres';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { PG_URL, uniqueSuffix, waitFor } from '../../core/test/support/services.ts';
import { available } from './support.ts';

// Issue 14: on a pg pool, a keyed command's record is written once, with its result, in the COMMIT's round
// trip; the claim is a transaction-scoped advisory lock on the key and a read of the committed row.

const Place = defineCommand('pg-i14.place').withPayload<{ id: string }>().returns<string>();
const Outer = defineCommand('pg-i14.outer').withPayload<{ key: string }>().returns<string>();

let n = 0;

async function setup(poolOptions: pg.PoolConfig = {}) {
  const sfx = `i14_${uniqueSuffix}_${++n}`;
  const tables = { outbox: `ob_${sfx}`, inbox: `ib_${sfx}` };
  const items = `it_${sfx}`;
  const pool = new pg.Pool({ connectionString: PG_URL, max: 8, ...poolOptions });
  pool.on('error', () => {});
  const pids = new Set<number>();
  pool.on('connect', (c) => pids.add((c as unknown as { processID: number }).processID));
  await migrate(pool, { tables });
  await pool.query(`CREATE TABLE ${items} (id TEXT NOT NULL)`);
  const uow = createPostgresUnitOfWork({
    client: pool,
    outbox: createPostgresOutboxStore({ client: pool, tables }),
    tables,
  });
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  return {
    pool,
    tables,
    uow,
    insert: (tx: pg.PoolClient, id: string) => tx.query(`INSERT INTO ${items} (id) VALUES ($1)`, [id]),
    rows: async () => (await admin.query(`SELECT id FROM ${items} ORDER BY id`)).rows.map((r) => r.id),
    /** Claims of this pool's connections waiting on a lock. */
    waiting: async () =>
      Number(
        (
          await admin.query('SELECT count(*) AS n FROM pg_locks WHERE NOT granted AND pid = ANY($1)', [
            [...pids],
          ])
        ).rows[0].n,
      ),
    admin,
    async close() {
      await admin.query(`DROP TABLE IF EXISTS ${items}, ${tables.outbox}, ${tables.inbox}`);
      await admin.end();
      await pool.end();
    },
  };
}

type Setup = Awaited<ReturnType<typeof setup>>;

/** Runs `fn` over fresh tables and a pool, dropped and ended afterwards. */
async function using(poolOptions: pg.PoolConfig, fn: (s: Setup) => Promise<void>) {
  const s = await setup(poolOptions);
  try {
    await fn(s);
  } finally {
    await s.close();
  }
}

/** A mediator whose `Place` handler inserts the item and returns `placed <id>`. */
const placing = (s: Setup) =>
  createMediator({
    behaviors: [s.uow],
    handlers: [
      handle(Place, async (cmd, ctx) => {
        await s.insert(s.uow.transaction(ctx), cmd.payload.id);
        return `placed ${cmd.payload.id}`;
      }),
    ],
  });

/** A gate a test opens by hand: `wait` resolves once `open` ran. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { open, wait: () => opened };
}

describe.skipIf(!available)('issue 14: postgres idempotent commands write their record once', () => {
  it('a first send inserts the row once, with its result: one heap tuple, no update', () =>
    using({}, async (s) => {
      const mediator = placing(s);
      expect(await mediator.send(Place.create({ id: 'a' }, { idempotencyKey: 'k' }))).toBe('placed a');
      const { rows } = await s.admin.query(`SELECT ctid::text, result FROM ${s.tables.inbox}`);
      // INSERT then UPDATE in one transaction leaves a dead first version: the live row would be (0,2).
      expect(rows).toEqual([{ ctid: '(0,1)', result: '["placed a"]' }]);
      expect(await mediator.send(Place.create({ id: 'a' }, { idempotencyKey: 'k' }))).toBe('placed a');
      expect(await s.rows()).toEqual(['a']);
    }));

  /**
   * Sends a keyed command whose first run holds its transaction open until the second send's claim waits on the
   * lock, then ends (committed, or rolled back when `firstFails`).
   */
  async function race(s: Setup, firstFails: boolean) {
    const release = gate();
    let calls = 0;
    const mediator = createMediator({
      behaviors: [s.uow],
      handlers: [
        handle(Place, async (cmd, ctx) => {
          const call = ++calls;
          await s.insert(s.uow.transaction(ctx), `${cmd.payload.id}${call}`);
          if (call === 1) {
            await release.wait();
            if (firstFails) throw new Error('first run fails');
          }
          return `placed ${cmd.payload.id} (${call})`;
        }),
      ],
    });
    const send = () => mediator.send(Place.create({ id: 'a' }, { idempotencyKey: 'k' }));
    const first = send();
    await waitFor(() => calls === 1, 10_000, 'the first handler');
    const second = send();
    // The second claim's lock statement waits; the read after it, in the same query, sees what the first did.
    await waitFor(async () => (await s.waiting()) === 1, 10_000, 'the second claim waiting on the lock');
    release.open();
    return { first, second, send, calls: () => calls };
  }

  for (const [level, poolOptions] of [
    ['read committed', {}],
    // The read after the lock sees the transaction's snapshot: the claim inserts, fails, and is retried.
    ['repeatable read', { options: '-c default_transaction_isolation=repeatable\\ read' }],
  ] as const) {
    it(`a claim waits for the transaction holding its key, then replays what it committed (${level})`, () =>
      using(poolOptions, async (s) => {
        const r = await race(s, false);
        expect(await r.first).toBe('placed a (1)');
        expect(await r.second).toBe('placed a (1)');
        expect(r.calls()).toBe(1);
        expect(await s.rows()).toEqual(['a1']);
      }));
  }

  it('a claim that waited for a transaction that rolled back runs the handler itself', () =>
    using({}, async (s) => {
      const r = await race(s, true);
      await expect(r.first).rejects.toThrow('first run fails');
      expect(await r.second).toBe('placed a (2)');
      expect(await r.send()).toBe('placed a (2)');
      expect(r.calls()).toBe(2);
      expect(await s.rows()).toEqual(['a2']);
    }));

  it('a nested send of the key its enclosing command holds is an IdempotencyConflictError', () =>
    using({}, async (s) => {
      let mediator!: Mediator;
      let calls = 0;
      mediator = createMediator({
        behaviors: [s.uow],
        handlers: [
          handle(Place, async (cmd, ctx) => {
            calls++;
            await s.insert(s.uow.transaction(ctx), cmd.payload.id);
            return `placed ${cmd.payload.id}`;
          }),
          handle(Outer, async (cmd) => {
            const error = await mediator
              .send(Place.create({ id: 'inner' }, { idempotencyKey: cmd.payload.key }))
              .catch((e: unknown) => e);
            return isCqrsError(error, 'CQRS_IDEMPOTENCY_CONFLICT') ? 'conflict' : `no conflict: ${error}`;
          }),
        ],
      });
      expect(await mediator.send(Outer.create({ key: 'k' }, { idempotencyKey: 'k' }))).toBe('conflict');
      expect(await mediator.send(Outer.create({ key: 'k' }, { idempotencyKey: 'k' }))).toBe('conflict');
      expect(calls).toBe(0);
      expect(await s.rows()).toEqual([]);
    }));

  it('a connection that lost its prepared statements (DEALLOCATE, a pooler) starts the claim again, inlined', () =>
    using({ max: 1 }, async (s) => {
      const mediator = placing(s);
      expect(await mediator.send(Place.create({ id: 'a' }, { idempotencyKey: 'k1' }))).toBe('placed a');
      // The pool's one connection: drop the statements PREPAREd by SQL (node-postgres's own stay).
      const c = await s.pool.connect();
      try {
        const { rows } = await c.query('SELECT name FROM pg_prepared_statements WHERE from_sql');
        expect(rows.length).toBeGreaterThan(0);
        for (const { name } of rows) await c.query(`DEALLOCATE ${name}`);
      } finally {
        c.release();
      }
      expect(await mediator.send(Place.create({ id: 'b' }, { idempotencyKey: 'k2' }))).toBe('placed b');
      expect(await mediator.send(Place.create({ id: 'b' }, { idempotencyKey: 'k2' }))).toBe('placed b');
      expect(await mediator.send(Place.create({ id: 'a' }, { idempotencyKey: 'k1' }))).toBe('placed a');
      expect(await s.rows()).toEqual(['a', 'b']);
    }));

  it('a connection whose first claim failed keeps working, with the values inlined', () =>
    using({ max: 1 }, async (s) => {
      const mediator = placing(s);
      await s.admin.query(`ALTER TABLE ${s.tables.inbox} RENAME TO ${s.tables.inbox}_away`);
      const error = await mediator
        .send(Place.create({ id: 'a' }, { idempotencyKey: 'k' }))
        .catch((e: unknown) => e);
      expect(isCqrsError(error, 'CQRS_STORAGE')).toBe(true);
      await s.admin.query(`ALTER TABLE ${s.tables.inbox}_away RENAME TO ${s.tables.inbox}`);
      expect(await mediator.send(Place.create({ id: 'a' }, { idempotencyKey: 'k' }))).toBe('placed a');
      expect(await mediator.send(Place.create({ id: 'a' }, { idempotencyKey: 'k' }))).toBe('placed a');
      expect(await s.rows()).toEqual(['a']);
    }));
});
