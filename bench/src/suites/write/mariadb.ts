/** The `write` suite on MariaDB (mysql2/promise pool). */
import { createMysqlOutboxStore, createMysqlUnitOfWork, migrate } from '@cqrs-ts/mysql';
import mysql from 'mysql2/promise';
import { suffix } from '../outbox/common.ts';
import type { WriteParts } from './common.ts';

const URL = process.env.CQRS_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

/** The parts, or `undefined` (with a note on stdout) when MariaDB is unreachable. */
export async function openMariadb(): Promise<WriteParts<mysql.PoolConnection> | undefined> {
  const pool = mysql.createPool({ uri: URL, connectionLimit: 4, connectTimeout: 2000 });
  try {
    await pool.query('SELECT 1');
  } catch (error) {
    console.log(`note: mariadb unreachable, case skipped (${(error as Error).message})`);
    await pool.end().catch(() => {});
    return undefined;
  }
  const tables = { outbox: `bench_wob_${suffix}`, inbox: `bench_wib_${suffix}` };
  const business = `bench_wbiz_${suffix}`;
  await migrate(pool, { tables });
  await pool.query(`CREATE TABLE ${business} (id BIGINT AUTO_INCREMENT PRIMARY KEY, note TEXT NOT NULL)`);
  const store = createMysqlOutboxStore({ client: pool, tables });
  return {
    store,
    async tx(fn) {
      const c = await pool.getConnection();
      try {
        await c.query('START TRANSACTION');
        await fn(c);
        await c.query('COMMIT');
      } catch (error) {
        await c.query('ROLLBACK').catch(() => {});
        throw error;
      } finally {
        c.release();
      }
    },
    insertBusiness: (c) => c.query(`INSERT INTO ${business} (note) VALUES (?)`, ['order placed']),
    unitOfWork: createMysqlUnitOfWork({ client: pool, outbox: store, tables }),
    async close() {
      await pool.query(`DROP TABLE IF EXISTS ${tables.outbox}, ${tables.inbox}, ${business}`);
      await pool.end();
    },
  };
}
