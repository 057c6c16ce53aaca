import type { MysqlClient, MysqlTransaction } from '@cqrs-ts/mysql';
import { Kysely, MysqlDialect } from 'kysely';
import { createPool as createCallbackPool } from 'mysql2';
import mysql from 'mysql2/promise';
import { MYSQL_URL, service, uniqueSuffix } from '../../core/test/support/services.ts';
import { inTransaction } from '../src/mysql-executor.ts';

export const available = await service('mariadb', async () => {
  const c = await mysql.createConnection({ uri: MYSQL_URL, connectTimeout: 2000 });
  await c.end();
});

export type Flavor = 'mysql2' | 'kysely';
export const FLAVORS: readonly Flavor[] = ['mysql2', 'kysely'];

/** One client of a flavor, plus a mysql2 pool for the test's own queries, an effects table and transactions. */
export async function connect(flavor: Flavor, prefix: string) {
  const sfx = `${prefix}_${flavor}_${uniqueSuffix}`;
  const effectsTable = `fx_${sfx}`;
  const pool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 6 });
  const db =
    flavor === 'kysely'
      ? new Kysely<never>({
          dialect: new MysqlDialect({ pool: createCallbackPool({ uri: MYSQL_URL, connectionLimit: 6 }) }),
        })
      : undefined;
  const client: MysqlClient = db ?? pool;
  await pool.query(`CREATE TABLE IF NOT EXISTS ${effectsTable} (id VARCHAR(64) NOT NULL) ENGINE=InnoDB`);
  /** Runs `fn` in a transaction of the flavor, with the package's own transaction helper. */
  const tx = <T>(fn: (tx: MysqlTransaction) => Promise<T>): Promise<T> =>
    inTransaction(client, (_execute, t) => fn(t));
  return {
    sfx,
    pool,
    db,
    client,
    tx,
    /** Inserts an effect row in `t`, whatever the flavor of the transaction. */
    async recordEffect(t: MysqlTransaction, id: string) {
      const sql = `INSERT INTO ${effectsTable} (id) VALUES (?)`;
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
      const [rows] = await pool.query(`SELECT COUNT(*) AS n FROM ${effectsTable}`);
      return Number((rows as { n: number }[])[0]!.n);
    },
    /** Empties the effects table and these tables. */
    async truncate(...tables: string[]) {
      for (const table of [...tables, effectsTable]) await pool.query(`DELETE FROM ${table}`);
    },
    /** Drops the effects table and these tables, and ends the clients. */
    async end(...tables: string[]) {
      await pool.query(`DROP TABLE IF EXISTS ${[...tables, effectsTable].join(', ')}`);
      await db?.destroy();
      await pool.end();
    },
  };
}
