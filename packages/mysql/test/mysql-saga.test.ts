import { createMysqlOutboxStore, createMysqlSagaStore, type MysqlClient, migrate } from '@cqrs-ts/mysql';
import {
  describeSagaStoreContract,
  describeSqlSagaStoreContract,
  type SagaStoreHarness,
  type SqlSagaStoreHarness,
} from '@cqrs-ts/testing/contracts';
import { Kysely, MysqlDialect } from 'kysely';
import { createPool as createCallbackPool } from 'mysql2';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MYSQL_URL, service, uniqueSuffix } from '../../core/test/support/services.ts';

const available = await service('mariadb', async () => {
  const c = await mysql.createConnection({ uri: MYSQL_URL, connectTimeout: 2000 });
  await c.end();
});

function harness(flavor: 'mysql2' | 'kysely') {
  return async (): Promise<SagaStoreHarness | undefined> => {
    if (!available) return undefined;
    const sfx = `${flavor}_${uniqueSuffix}`;
    const tables = { outbox: `sob_${sfx}`, inbox: `sib_${sfx}`, saga: `sg_${sfx}`, sagaLog: `sgl_${sfx}` };
    const pool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 8 });
    const db =
      flavor === 'kysely'
        ? new Kysely<never>({
            dialect: new MysqlDialect({ pool: createCallbackPool({ uri: MYSQL_URL, connectionLimit: 8 }) }),
          })
        : undefined;
    const client: MysqlClient = db ?? pool;
    await migrate(client, { tables });
    await migrate(client, { tables });
    const outbox = createMysqlOutboxStore({ client, tables });
    return {
      store: () => createMysqlSagaStore({ client, tables }),
      outbox: {
        store: () => createMysqlSagaStore({ client, tables, outbox }),
        rows: async () => {
          const [rows] = await pool.query(`SELECT count(*) AS n FROM ${tables.outbox}`);
          return Number((rows as { n: number }[])[0]!.n);
        },
      },
      async reset() {
        for (const t of [tables.saga, tables.sagaLog, tables.outbox]) await pool.query(`TRUNCATE ${t}`);
      },
      async close() {
        await pool.query(
          `DROP TABLE IF EXISTS ${tables.saga}, ${tables.sagaLog}, ${tables.outbox}, ${tables.inbox}`,
        );
        if (db) await db.destroy();
        await pool.end();
      },
    };
  };
}

describeSagaStoreContract('mariadb (mysql2)', harness('mysql2'));
describeSagaStoreContract('mariadb (kysely)', harness('kysely'));

describeSqlSagaStoreContract('mariadb', async (): Promise<SqlSagaStoreHarness | undefined> => {
  if (!available) return undefined;
  const sfx = `x_${uniqueSuffix}`;
  const tables = { outbox: `sob_${sfx}`, inbox: `sib_${sfx}`, saga: `sg_${sfx}`, sagaLog: `sgl_${sfx}` };
  const pool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 8 });
  await migrate(pool, { tables });
  return {
    store: (options) => createMysqlSagaStore({ client: pool, tables, maxTextBytes: 64 * 1024, ...options }),
    storeWithTinyOutbox: () =>
      createMysqlSagaStore({
        client: pool,
        tables,
        outbox: createMysqlOutboxStore({ client: pool, tables, maxPayloadBytes: 100 }),
      }),
    outboxRows: async () => {
      const [rows] = await pool.query(`SELECT count(*) AS n FROM ${tables.outbox}`);
      return Number((rows as { n: number }[])[0]!.n);
    },
    storeWithTables: (t) => createMysqlSagaStore({ client: pool, tables: t }),
    migrateWith: (t) => migrate(pool, { tables: t }),
    writers: (n) => Array.from({ length: n }, () => createMysqlSagaStore({ client: pool, tables })),
    async corruptNumbers(sagaId, logSagaId) {
      await pool.query(`UPDATE ${tables.saga} SET version = 9007199254740993 WHERE id = ?`, [sagaId]);
      await pool.query(`UPDATE ${tables.sagaLog} SET started_at = -9223372036854775807 WHERE saga_id = ?`, [
        logSagaId,
      ]);
    },
    async corruptEnums(sagaId, logSagaId) {
      await pool.query(`ALTER TABLE ${tables.saga} DROP CONSTRAINT ${tables.saga}_status_check`);
      await pool.query(`ALTER TABLE ${tables.sagaLog} DROP CONSTRAINT ${tables.sagaLog}_action_check`);
      await pool.query(`UPDATE ${tables.saga} SET version = 2, status = 'zombie' WHERE id = ?`, [sagaId]);
      await pool.query(`UPDATE ${tables.sagaLog} SET started_at = 1, action = 'undo' WHERE saga_id = ?`, [
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
});

describe.skipIf(!available)('mariadb saga store', () => {
  const tables = { saga: `sgi_${uniqueSuffix}`, sagaLog: `sgli_${uniqueSuffix}` };
  let pool: mysql.Pool;
  beforeAll(async () => {
    pool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 2 });
    await migrate(pool, { tables });
  });
  afterAll(async () => {
    await pool.query(`DROP TABLE IF EXISTS ${tables.saga}, ${tables.sagaLog}`);
    await pool.end();
  });

  it('the recovery query reads the (status, updated_at, id) index', async () => {
    const [rows] = await pool.query(
      `EXPLAIN SELECT * FROM ${tables.saga} FORCE INDEX (${tables.saga}_recoverable)
         WHERE status IN ('running', 'compensating') AND (lease_owner IS NULL OR lease_until < 5)
         AND updated_at <= 5 ORDER BY updated_at, id LIMIT 10`,
    );
    expect((rows as { key: string | null }[])[0]?.key).toBe(`${tables.saga}_recoverable`);
    const [plain] = await pool.query(
      `EXPLAIN SELECT * FROM ${tables.saga} WHERE status IN ('running', 'compensating')
         AND updated_at <= 5 ORDER BY updated_at, id LIMIT 10`,
    );
    expect((plain as { possible_keys: string | null }[])[0]?.possible_keys).toContain(
      `${tables.saga}_recoverable`,
    );
  });

  it('compares names and ids exactly (binary collation)', async () => {
    const store = createMysqlSagaStore({ client: pool, tables });
    const base = { definitionVersion: 1, context: '{}', owner: 'w', now: 1, leaseMs: 1, deadlineAt: null };
    await store.create({ ...base, id: 'a', name: 'Orders' });
    await store.create({ ...base, id: 'A', name: 'orders' });
    expect((await store.list({ limit: 10 })).map((r) => r.id)).toEqual(['A', 'a']);
    expect((await store.list({ limit: 10, names: ['orders'] })).map((r) => r.id)).toEqual(['A']);
  });
});
