import type { OutboxEncoderOptions } from '@cqrs-ts/core/spi';
import {
  createMysqlInboxStore,
  createMysqlOutboxStore,
  type MysqlClient,
  type MysqlTransaction,
  migrate,
} from '@cqrs-ts/mysql';
import { Kysely, MysqlDialect } from 'kysely';
import { createPool as createCallbackPool } from 'mysql2';
import mysql from 'mysql2/promise';
import { describeOutboxContract, type OutboxHarness } from '../../core/test/support/outbox-contract.ts';
import { MYSQL_URL, service, uniqueSuffix } from '../../core/test/support/services.ts';
import { toRecord } from '../src/mysql-outbox-store.ts';

const available = await service('mariadb', async () => {
  const c = await mysql.createConnection({ uri: MYSQL_URL, connectTimeout: 2000 });
  await c.end();
});

function harness(flavor: 'mysql2' | 'kysely') {
  return async (): Promise<OutboxHarness<MysqlTransaction> | undefined> => {
    if (!available) return undefined;
    const sfx = `${flavor}_${uniqueSuffix}`;
    const tables = { outbox: `ob_${sfx}`, inbox: `ib_${sfx}` };
    const effects = `fx_${sfx}`;
    const pool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 6 });
    const db =
      flavor === 'kysely'
        ? new Kysely<never>({
            dialect: new MysqlDialect({ pool: createCallbackPool({ uri: MYSQL_URL, connectionLimit: 6 }) }),
          })
        : undefined;
    const client: MysqlClient = db ?? pool;
    await migrate(client, { tables });
    await migrate(client, { tables });
    await pool.query(`CREATE TABLE IF NOT EXISTS ${effects} (id VARCHAR(64) NOT NULL)`);
    const rollbackSignal = new Error('rollback');
    const tx = async <T>(fn: (tx: MysqlTransaction) => Promise<T>): Promise<T> => {
      if (db) return db.transaction().execute((t) => fn(t));
      const c = await pool.getConnection();
      try {
        await c.beginTransaction();
        const r = await fn(c);
        await c.commit();
        return r;
      } catch (e) {
        await c.rollback();
        throw e;
      } finally {
        c.release();
      }
    };
    return {
      store: (options?: OutboxEncoderOptions) => createMysqlOutboxStore({ client, tables, ...options }),
      inbox: createMysqlInboxStore({ client, tables }),
      tx,
      async rollback(fn) {
        await tx(async (t) => {
          await fn(t);
          throw rollbackSignal;
        }).catch((e: unknown) => {
          if (e !== rollbackSignal) throw e;
        });
      },
      withClosedTx: db
        ? undefined
        : async (fn) => {
            const c = await mysql.createConnection({ uri: MYSQL_URL });
            await c.beginTransaction();
            await c.commit();
            await c.end();
            await fn(c);
          },
      missingTableStore: () => createMysqlOutboxStore({ client, tables: { outbox: `missing_${sfx}` } }),
      async rows() {
        const [rows] = await pool.query(`SELECT * FROM ${tables.outbox} ORDER BY seq`);
        return (rows as Record<string, unknown>[]).map(toRecord);
      },
      async recordEffect(t, id) {
        const sql = `INSERT INTO ${effects} (id) VALUES (?)`;
        if ('query' in t) await t.query(sql, [id]);
        else
          await t.executeQuery({
            sql,
            parameters: [id],
            query: { kind: 'RawNode', sqlFragments: [sql], parameters: [] },
            queryId: { queryId: 'fx' },
          });
      },
      async effects() {
        const [rows] = await pool.query(`SELECT COUNT(*) AS n FROM ${effects}`);
        return Number((rows as { n: number }[])[0]!.n);
      },
      async reset() {
        for (const table of [tables.outbox, tables.inbox, effects]) await pool.query(`DELETE FROM ${table}`);
      },
      async close() {
        await pool.query(`DROP TABLE IF EXISTS ${tables.outbox}, ${tables.inbox}, ${effects}`);
        await db?.destroy();
        await pool.end();
      },
    };
  };
}

describeOutboxContract('mariadb (mysql2)', harness('mysql2'));
describeOutboxContract('mariadb (kysely)', harness('kysely'));
