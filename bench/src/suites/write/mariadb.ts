/** The `write` suite on MariaDB (mysql2/promise pool). */
import {
  createMysqlEventStore,
  createMysqlOutboxStore,
  createMysqlUnitOfWork,
  migrate,
} from '@cqrs-ts/mysql';
import mysql from 'mysql2/promise';
import { suffix } from '../outbox/common.ts';
import type { WriteParts } from './common.ts';
import type { EventAppendParts } from './event-append.ts';

const URL = process.env.CQRS_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

/** The parts, or `undefined` (with a note on stdout) when MariaDB is unreachable. */
export async function openMariadb(): Promise<
  (WriteParts<mysql.PoolConnection> & EventAppendParts<mysql.PoolConnection>) | undefined
> {
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
  const streams = `${tables.outbox}_stream`;
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
    eventStore: createMysqlEventStore({ client: pool, tables }),
    async rawAppend(c, r, expected) {
      const [head] =
        expected === 0
          ? await c.query(
              `INSERT INTO ${streams} (stream_id, version, created_at, updated_at) VALUES (?, 1, ?, ?)`,
              [r.streamId, r.createdAt, r.createdAt],
            )
          : await c.query(
              `UPDATE ${streams} SET version = version + 1, updated_at = ? WHERE stream_id = ? AND version = ?`,
              [r.createdAt, r.streamId, expected],
            );
      if ((head as { affectedRows: number }).affectedRows !== 1)
        throw new Error(`stream ${r.streamId} is not at version ${expected}`);
      await c.query(
        `INSERT INTO ${tables.outbox} (id, type, topic, \`key\`, payload, headers, content_encoding, next_attempt_at, created_at, stream_id, stream_version)
         VALUES (?, ?, ?, ?, ?, ?, 'identity', ?, ?, ?, ?)`,
        [
          r.id,
          r.type,
          r.topic,
          r.key,
          Buffer.from(r.payload),
          r.headers,
          r.createdAt,
          r.createdAt,
          r.streamId,
          expected + 1,
        ],
      );
    },
    async close() {
      await pool.query(
        `DROP TABLE IF EXISTS ${tables.outbox}, ${tables.outbox}_archive, ${streams}, ${tables.inbox}, ${business}`,
      );
      await pool.end();
    },
  };
}
