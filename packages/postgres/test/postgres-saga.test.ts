import {
  createPostgresOutboxStore,
  createPostgresSagaStore,
  migrate,
  type PostgresClient,
} from '@cqrs-ts/postgres';
import {
  describeSagaStoreContract,
  describeSqlSagaStoreContract,
  type SagaStoreHarness,
  type SqlSagaStoreHarness,
} from '@cqrs-ts/testing/contracts';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

function checks() {
  return async (): Promise<SqlSagaStoreHarness | undefined> => {
    if (!available) return undefined;
    const sfx = `x_${uniqueSuffix}`;
    const tables = { outbox: `sob_${sfx}`, inbox: `sib_${sfx}`, saga: `sg_${sfx}`, sagaLog: `sgl_${sfx}` };
    const pool = new pg.Pool({ connectionString: PG_URL, max: 8 });
    pool.on('error', () => {});
    await migrate(pool, { tables });
    return {
      store: (options) =>
        createPostgresSagaStore({ client: pool, tables, maxTextBytes: 64 * 1024, ...options }),
      storeWithTinyOutbox: () =>
        createPostgresSagaStore({
          client: pool,
          tables,
          outbox: createPostgresOutboxStore({ client: pool, tables, maxPayloadBytes: 100 }),
        }),
      outboxRows: async () =>
        Number((await pool.query(`SELECT count(*) AS n FROM ${tables.outbox}`)).rows[0].n),
      storeWithTables: (t) => createPostgresSagaStore({ client: pool, tables: t }),
      migrateWith: (t) => migrate(pool, { tables: t }),
      writers: (n) => Array.from({ length: n }, () => createPostgresSagaStore({ client: pool, tables })),
      async corruptNumbers(sagaId, logSagaId) {
        await pool.query(`UPDATE ${tables.saga} SET version = 9007199254740993 WHERE id = $1`, [sagaId]);
        await pool.query(
          `UPDATE ${tables.sagaLog} SET started_at = -9223372036854775807 WHERE saga_id = $1`,
          [logSagaId],
        );
      },
      async corruptEnums(sagaId, logSagaId) {
        await pool.query(`ALTER TABLE ${tables.saga} DROP CONSTRAINT ${tables.saga}_status_check`);
        await pool.query(`ALTER TABLE ${tables.sagaLog} DROP CONSTRAINT ${tables.sagaLog}_action_check`);
        await pool.query(`UPDATE ${tables.saga} SET version = 2, status = 'zombie' WHERE id = $1`, [sagaId]);
        await pool.query(`UPDATE ${tables.sagaLog} SET started_at = 1, action = 'undo' WHERE saga_id = $1`, [
          logSagaId,
        ]);
      },
      async close() {
        await pool.query(
          `DROP TABLE IF EXISTS ${tables.saga}, ${tables.sagaLog}, ${tables.outbox}, ${tables.inbox}`,
        );
        await pool.end();
      },
    };
  };
}

describeSqlSagaStoreContract('postgres', checks());

describe.skipIf(!available)('postgres saga store', () => {
  const tables = { saga: `sgi_${uniqueSuffix}`, sagaLog: `sgli_${uniqueSuffix}` };
  let pool: pg.Pool;
  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: PG_URL, max: 2 });
    pool.on('error', () => {});
    await migrate(pool, { tables });
  });
  afterAll(async () => {
    await pool.query(`DROP TABLE IF EXISTS ${tables.saga}, ${tables.sagaLog}`);
    await pool.end();
  });

  it('needs a client that opens transactions for an outbox', () => {
    const single = new pg.Client({ connectionString: PG_URL });
    const outbox = createPostgresOutboxStore({ client: pool });
    expect(() => createPostgresSagaStore({ client: single, tables, outbox })).toThrow(/transactions/);
    expect(() => createPostgresSagaStore({ client: pool, tables, maxTextBytes: 0 })).toThrow(/maxTextBytes/);
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
