import { type AnyEvent, isCqrsError, type SagaCommit, type SagaStore, uuidv7 } from '@cqrs-ts/core';
import {
  createPostgresOutboxStore,
  createPostgresSagaStore,
  migrate,
  type PostgresClient,
} from '@cqrs-ts/postgres';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  describeSagaStoreContract,
  SagaStepDone,
  type SagaStoreHarness,
} from '../../core/test/support/saga-store-contract.ts';
import { PG_URL, service, uniqueSuffix } from '../../core/test/support/services.ts';

const available = await service('postgres', async () => {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  await c.connect();
  await c.end();
});

type Flavor = 'pg' | 'postgres.js' | 'kysely';

function harness(flavor: Flavor) {
  return async (): Promise<SagaStoreHarness | undefined> => {
    if (!available) return undefined;
    const sfx = `${flavor.replace(/\W/g, '')}_${uniqueSuffix}`;
    const tables = { outbox: `sob_${sfx}`, inbox: `sib_${sfx}`, saga: `sg_${sfx}`, sagaLog: `sgl_${sfx}` };
    const pool = new pg.Pool({ connectionString: PG_URL, max: 8 });
    pool.on('error', () => {});
    const sql = flavor === 'postgres.js' ? postgres(PG_URL, { max: 8, onnotice: () => {} }) : undefined;
    const db =
      flavor === 'kysely' ? new Kysely<never>({ dialect: new PostgresDialect({ pool }) }) : undefined;
    const client: PostgresClient = sql ?? db ?? pool;
    await migrate(client, { tables });
    await migrate(client, { tables });
    const outbox = createPostgresOutboxStore({ client, tables, notifyChannel: false });
    return {
      store: () => createPostgresSagaStore({ client, tables }),
      outbox: {
        store: () => createPostgresSagaStore({ client, tables, outbox }),
        rows: async () => Number((await pool.query(`SELECT count(*) AS n FROM ${tables.outbox}`)).rows[0].n),
      },
      async reset() {
        await pool.query(`TRUNCATE ${tables.saga}, ${tables.sagaLog}, ${tables.outbox}`);
      },
      async close() {
        await pool.query(
          `DROP TABLE IF EXISTS ${tables.saga}, ${tables.sagaLog}, ${tables.outbox}, ${tables.inbox}`,
        );
        await sql?.end();
        if (db) await db.destroy();
        else await pool.end();
      },
    };
  };
}

describeSagaStoreContract('postgres (pg)', harness('pg'));
describeSagaStoreContract('postgres (postgres.js)', harness('postgres.js'));
describeSagaStoreContract('postgres (kysely)', harness('kysely'));

const T0 = 1_700_000_000_000;
const commitOf = (id: string, over: Partial<SagaCommit> = {}): SagaCommit => ({
  id,
  owner: 'w1',
  expectedVersion: 1,
  now: T0 + 10,
  status: 'running',
  context: '{"step":1}',
  cursor: 1,
  error: null,
  log: [
    {
      stepId: 'reserve',
      slot: 0,
      action: 'act',
      status: 'completed',
      attempts: 1,
      result: '{}',
      error: null,
      startedAt: T0,
      at: T0 + 1,
    },
  ],
  lease: 30_000,
  ...over,
});
const create = (s: SagaStore, id = uuidv7(), context = '{"orderId":"o-1"}') =>
  s
    .create({
      id,
      name: 'orders',
      definitionVersion: 1,
      context,
      owner: 'w1',
      now: T0,
      leaseMs: 30_000,
      deadlineAt: null,
    })
    .then(() => id);
const errorOf = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );

describe.skipIf(!available)('postgres saga store', () => {
  const sfx = `x_${uniqueSuffix}`;
  const tables = { outbox: `sob_${sfx}`, inbox: `sib_${sfx}`, saga: `sg_${sfx}`, sagaLog: `sgl_${sfx}` };
  let pool: pg.Pool;
  let store: SagaStore;
  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: PG_URL, max: 10 });
    pool.on('error', () => {});
    await migrate(pool, { tables });
    store = createPostgresSagaStore({ client: pool, tables, maxTextBytes: 64 * 1024 });
  });
  afterAll(async () => {
    await pool.query(
      `DROP TABLE IF EXISTS ${tables.saga}, ${tables.sagaLog}, ${tables.outbox}, ${tables.inbox}`,
    );
    await pool.end();
  });

  it('rejects malicious or invalid table names and options before touching the database', () => {
    for (const saga of ['x; DROP TABLE users', 'a"b', 'Upper', '', 'a.b.c', `t${'x'.repeat(70)}`]) {
      expect(() => createPostgresSagaStore({ client: pool, tables: { saga } })).toThrow(/invalid table name/);
      expect(() => createPostgresSagaStore({ client: pool, tables: { sagaLog: saga } })).toThrow(
        /invalid table name/,
      );
    }
    const err = errorOf(migrate(pool, { tables: { saga: 'x;--' } }));
    return err.then((e) => {
      expect(isCqrsError(e, 'CQRS_CONFIGURATION')).toBe(true);
      expect(() => createPostgresSagaStore({ client: pool, tables, maxTextBytes: 0 })).toThrow(
        /maxTextBytes/,
      );
      const single = new pg.Client({ connectionString: PG_URL });
      const outbox = createPostgresOutboxStore({ client: pool, tables });
      expect(() => createPostgresSagaStore({ client: single, tables, outbox })).toThrow(/transactions/);
    });
  });

  it('refuses a context that does not serialize, an oversized one and bad fields with typed errors, writing nothing', async () => {
    const id = uuidv7();
    const bad = async (context: unknown, code: string) => {
      const e = await errorOf(create(store, id, context as string));
      expect(isCqrsError(e, code as 'CQRS_VALIDATION')).toBe(true);
      expect(await store.load(id)).toBeUndefined();
    };
    await bad({ orderId: 'o-1' }, 'CQRS_VALIDATION');
    await bad(null, 'CQRS_VALIDATION');
    await bad('{"s":"\ud800"}', 'CQRS_VALIDATION'); // lone surrogate: not UTF-8 encodable
    await bad('{"s":"a\u0000b"}', 'CQRS_VALIDATION'); // NUL: Postgres TEXT cannot hold it
    await bad(JSON.stringify({ blob: 'x'.repeat(70 * 1024) }), 'CQRS_PAYLOAD_TOO_LARGE');
    await bad(JSON.stringify({ blob: 'é'.repeat(33 * 1024) }), 'CQRS_PAYLOAD_TOO_LARGE'); // 66 KiB in UTF-8
    const e = await errorOf(
      store.create({
        id: 'x'.repeat(300),
        name: '',
        definitionVersion: 1.5,
        context: '{}',
        owner: 'w1',
        now: Number.NaN,
        leaseMs: 10,
        deadlineAt: null,
      }),
    );
    expect(isCqrsError(e, 'CQRS_VALIDATION')).toBe(true);
    expect((e as { issues: { path: string[] }[] }).issues.map((i) => i.path.join('.'))).toEqual([
      'id',
      'now',
      'name',
      'definitionVersion',
    ]);

    await create(store, id);
    for (const [over, code] of [
      [{ context: 'x'.repeat(65 * 1024) }, 'CQRS_PAYLOAD_TOO_LARGE'],
      [{ context: { a: 1 } }, 'CQRS_VALIDATION'],
      [{ status: 'done' }, 'CQRS_VALIDATION'],
      [{ cursor: '1' }, 'CQRS_VALIDATION'],
      [{ log: [{ ...commitOf(id).log[0]!, action: 'undo' }] }, 'CQRS_VALIDATION'],
      [{ log: [{ ...commitOf(id).log[0]!, result: 'r'.repeat(65 * 1024) }] }, 'CQRS_PAYLOAD_TOO_LARGE'],
    ] as const) {
      const err = await errorOf(store.commit(commitOf(id, over as unknown as Partial<SagaCommit>)));
      expect(isCqrsError(err, code)).toBe(true);
    }
    expect(await store.load(id)).toMatchObject({ version: 1, context: '{"orderId":"o-1"}', cursor: 0 });
    expect(await store.history(id)).toEqual([]);
    expect(isCqrsError(await errorOf(store.findRecoverable({ now: T0, limit: 0 })), 'CQRS_VALIDATION')).toBe(
      true,
    );
  });

  it('reports a corrupted saga row or log row as a typed error on read; the other sagas stay readable', async () => {
    const good = await create(store);
    const badRow = await create(store);
    const badLog = await create(store);
    await store.commit(commitOf(good, { lease: 'release' }));
    await store.commit(commitOf(badLog, { lease: 'release' }));
    await store.commit(commitOf(badRow, { lease: 'release' }));
    // Values the schema admits but a record cannot hold.
    await pool.query(`UPDATE ${tables.saga} SET version = 9007199254740993 WHERE id = $1`, [badRow]);
    await pool.query(`UPDATE ${tables.sagaLog} SET started_at = -9223372036854775807 WHERE saga_id = $1`, [
      badLog,
    ]);
    const e1 = await errorOf(store.load(badRow));
    expect(isCqrsError(e1, 'CQRS_SERIALIZATION')).toBe(true);
    expect(String((e1 as Error).message)).toContain(badRow);
    expect(String((e1 as Error).message)).toContain('version');
    const e2 = await errorOf(store.history(badLog));
    expect(isCqrsError(e2, 'CQRS_SERIALIZATION')).toBe(true);
    expect(String((e2 as Error).message)).toContain('started_at');
    expect(await store.load(good)).toMatchObject({ id: good, version: 2 });
    expect(await store.load(badLog)).toMatchObject({ id: badLog, version: 2 });
    expect(await store.history(good)).toHaveLength(1);
    // A table made by hand without the CHECK constraints: an unknown status or action is refused on read.
    await pool.query(`ALTER TABLE ${tables.saga} DROP CONSTRAINT ${tables.saga}_status_check`);
    await pool.query(`ALTER TABLE ${tables.sagaLog} DROP CONSTRAINT ${tables.sagaLog}_action_check`);
    await pool.query(`UPDATE ${tables.saga} SET version = 2, status = 'zombie' WHERE id = $1`, [badRow]);
    await pool.query(`UPDATE ${tables.sagaLog} SET started_at = 1, action = 'undo' WHERE saga_id = $1`, [
      badLog,
    ]);
    expect(String(await errorOf(store.load(badRow)))).toMatch(/status holds "zombie"/);
    expect(String(await errorOf(store.history(badLog)))).toMatch(/action holds "undo"/);
    const recoverable = (await store.findRecoverable({ now: T0 + 100, limit: 10 })).map((r) => r.id);
    expect(recoverable.sort()).toEqual([good, badLog].sort());
    expect(await store.acquire({ id: good, owner: 'w2', now: T0 + 100, leaseMs: 1000 })).toMatchObject({
      leaseOwner: 'w2',
    });
    // Other sagas still commit.
    await store.commit(commitOf(good, { owner: 'w2', expectedVersion: 3, cursor: 2, log: [] }));
  });

  it('of many concurrent commits at the same version exactly one wins, every round', async () => {
    const stores = Array.from({ length: 8 }, () => createPostgresSagaStore({ client: pool, tables }));
    for (let round = 0; round < 10; round++) {
      const id = await create(store);
      const results = await Promise.allSettled(
        stores.map((s, i) =>
          s.commit(
            commitOf(id, {
              context: `{"by":${i}}`,
              log: [{ ...commitOf(id).log[0]!, stepId: `s${i}` }],
            }),
          ),
        ),
      );
      const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
      expect(won).toHaveLength(1);
      for (const r of results) {
        if (r.status === 'rejected') expect(isCqrsError(r.reason, 'CQRS_CONCURRENCY')).toBe(true);
      }
      const log = await store.history(id);
      expect(log.map((e) => e.stepId)).toEqual([`s${won[0]}`]);
      expect((await store.load(id))?.context).toBe(`{"by":${won[0]}}`);
    }
  });

  it('of concurrent acquires of one expired saga exactly one gets it, every round', async () => {
    const stores = Array.from({ length: 8 }, () => createPostgresSagaStore({ client: pool, tables }));
    for (let round = 0; round < 10; round++) {
      const id = await create(store);
      const got = await Promise.all(
        stores.map((s, i) => s.acquire({ id, owner: `r${i}`, now: T0 + 60_000, leaseMs: 10_000 })),
      );
      const winners = got.filter((r) => r !== undefined);
      expect(winners).toHaveLength(1);
      expect(await store.load(id)).toMatchObject({ leaseOwner: winners[0]!.leaseOwner, version: 2 });
    }
  });

  it('rolls a commit back when staging its events fails: no update, no log row, no event', async () => {
    const outbox = createPostgresOutboxStore({ client: pool, tables, maxPayloadBytes: 100 });
    const s = createPostgresSagaStore({ client: pool, tables, outbox });
    const id = await create(s);
    const big = SagaStepDone.create({ sagaId: 'x'.repeat(500), n: 1 }) as AnyEvent;
    const e = await errorOf(s.commit(commitOf(id, { events: [big] })));
    expect(isCqrsError(e, 'CQRS_PAYLOAD_TOO_LARGE')).toBe(true);
    expect(await s.load(id)).toMatchObject({ version: 1, cursor: 0 });
    expect(await s.history(id)).toEqual([]);
    const n = await pool.query(`SELECT count(*) AS n FROM ${tables.outbox}`);
    expect(Number(n.rows[0].n)).toBe(0);
    await s.commit(commitOf(id, { events: [SagaStepDone.create({ sagaId: id, n: 1 }) as AnyEvent] }));
    expect(await s.load(id)).toMatchObject({ version: 2, cursor: 1 });
  });

  it('the recovery query can use the partial recoverable index', async () => {
    const c = await pool.connect();
    try {
      await c.query('BEGIN');
      await c.query('SET LOCAL enable_seqscan = off');
      const plan = await c.query(
        `EXPLAIN SELECT * FROM ${tables.saga} WHERE status IN ('running', 'compensating')
           AND (lease_owner IS NULL OR lease_until < 5) AND updated_at <= 5 ORDER BY updated_at, id LIMIT 10`,
      );
      expect(plan.rows.map((r) => r['QUERY PLAN']).join('\n')).toContain(`${tables.saga}_recoverable`);
      await c.query('ROLLBACK');
    } finally {
      c.release();
    }
  });
});
