/** The `read` suite on MariaDB (mysql2 pool). */

import { createOutboxEncoder } from '@cqrs-ts/core/spi';
import {
  createMysqlEventStore,
  createMysqlOutboxStore,
  createMysqlProjectionStore,
  migrate,
} from '@cqrs-ts/mysql';
import mysql from 'mysql2/promise';
import { suffix } from '../outbox/common.ts';
import { OrderPlaced, type ReadParts } from './common.ts';

const URL = process.env.CQRS_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

type Conn = mysql.PoolConnection;

/** The parts, or `undefined` (with a note on stdout) when MariaDB is unreachable. */
export async function openMariadb(): Promise<ReadParts<Conn> | undefined> {
  const pool = mysql.createPool({ uri: URL, connectionLimit: 4, connectTimeout: 2000 });
  try {
    await pool.query('SELECT 1');
  } catch (error) {
    console.log(`note: mariadb unreachable, case skipped (${(error as Error).message})`);
    await pool.end().catch(() => {});
    return undefined;
  }
  const tables = {
    outbox: `bench_rob_${suffix}`,
    inbox: `bench_rib_${suffix}`,
    projection: `bench_rpj_${suffix}`,
  };
  const model = `bench_rmodel_${suffix}`;
  const checkpoints = `bench_rcp_${suffix}`;
  await migrate(pool, { tables });
  await pool.query(
    `CREATE TABLE ${model} (order_id VARCHAR(64) NOT NULL PRIMARY KEY, total BIGINT NOT NULL, n INT NOT NULL) ENGINE=InnoDB`,
  );
  await pool.query(
    `CREATE TABLE ${checkpoints} (name VARCHAR(64) PRIMARY KEY, position VARCHAR(64) NOT NULL)`,
  );
  await pool.query(`INSERT INTO ${checkpoints} VALUES ('raw', '0')`);
  const upsert = `INSERT INTO ${model} (order_id, total, n) VALUES (?, ?, 1)
    ON DUPLICATE KEY UPDATE total = total + VALUES(total), n = n + 1`;
  const template = createOutboxEncoder().encode(
    [OrderPlaced.create({ orderId: 'o', total: 0 })],
    Date.now(),
  )[0]!;
  return {
    log: createMysqlEventStore({ client: pool, tables }),
    outbox: createMysqlOutboxStore({ client: pool, tables }) as never,
    store: createMysqlProjectionStore({ client: pool, tables }) as never,
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
    upsert: async (c, orderId, total) => {
      await c.query(upsert, [orderId, total]);
    },
    upsertMany: async (c, rows) => {
      const params: unknown[] = [];
      for (const [id, r] of rows) params.push(id, r.total, r.n);
      await c.query(
        `INSERT INTO ${model} (order_id, total, n) VALUES ${Array.from(rows.keys(), () => '(?, ?, ?)').join(', ')}
         ON DUPLICATE KEY UPDATE total = total + VALUES(total), n = n + VALUES(n)`,
        params,
      );
    },
    checkpoint: async (c, position) => {
      await c.query(`UPDATE ${checkpoints} SET position = ? WHERE name = 'raw'`, [position]);
    },
    async truncate() {
      await pool.query(`TRUNCATE ${model}`);
      await pool.query(`UPDATE ${checkpoints} SET position = '0'`);
    },
    rows: async () => {
      const [rows] = await pool.query(`SELECT count(*) AS n FROM ${model}`);
      return Number((rows as { n: number }[])[0]!.n);
    },
    async bulkSeed(n) {
      // One statement (consecutive sequences: no gap for the high-water mark to wait on); ids from the row number.
      await pool.query(
        `INSERT INTO ${tables.outbox} (id, type, topic, \`key\`, payload, headers, content_encoding, status, next_attempt_at, created_at)
         SELECT u, ?, ?, NULL, CONCAT('{"orderId":"o', g, '","total":', g % 100, '}'), JSON_SET(?, '$.id', u),
           'identity', 'published', ?, ?
         FROM (SELECT seq AS g, CONCAT(LPAD(HEX(seq), 8, '0'), '-0000-4000-8000-000000000000') AS u FROM seq_1_to_${Math.floor(n)}) s`,
        [
          template.type,
          template.topic,
          JSON.stringify(template.headers),
          template.createdAt,
          template.createdAt,
        ],
      );
    },
    async close() {
      await pool.query(
        `DROP TABLE IF EXISTS ${tables.outbox}, ${tables.outbox}_archive, ${tables.outbox}_stream, ${tables.inbox},
          ${tables.projection}, ${tables.projection}_doc, ${tables.projection}_parked, ${model}, ${checkpoints}`,
      );
      await pool.end();
    },
  };
}
