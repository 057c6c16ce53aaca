import { createMysqlOutboxStore, migrate } from '@cqrs-ts/mysql';
import mysql from 'mysql2/promise';
import { type OutboxTarget, outboxTarget, suffix } from './common.ts';

const URL = process.env.CQRS_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

type Conn = mysql.PoolConnection;

/** The target, or `undefined` (with a note on stdout) when MariaDB is unreachable. */
export async function openMariadb(): Promise<OutboxTarget | undefined> {
  const pool = mysql.createPool({ uri: URL, connectionLimit: 4, connectTimeout: 2000 });
  try {
    await pool.query('SELECT 1');
  } catch (error) {
    console.log(`note: mariadb unreachable, case skipped (${(error as Error).message})`);
    await pool.end().catch(() => {});
    return undefined;
  }
  const tables = { outbox: `bench_ob_${suffix}`, inbox: `bench_ib_${suffix}` };
  const business = `bench_biz_${suffix}`;
  await migrate(pool, { tables });
  await pool.query(`CREATE TABLE ${business} (id BIGINT AUTO_INCREMENT PRIMARY KEY, note TEXT NOT NULL)`);
  const store = createMysqlOutboxStore({ client: pool, tables });
  const tx = async (fn: (c: Conn) => Promise<void>) => {
    const c = await pool.getConnection();
    try {
      await c.beginTransaction();
      await fn(c);
      await c.commit();
    } catch (error) {
      await c.rollback().catch(() => {});
      throw error;
    } finally {
      c.release();
    }
  };
  const insertBusiness = (c: Conn) => c.query(`INSERT INTO ${business} (note) VALUES (?)`, ['order placed']);
  return outboxTarget({
    store,
    tx,
    insertBusiness,
    async rawClaim(limit) {
      let moved = 0;
      await tx(async (c) => {
        const [rows] = await c.query(
          `SELECT seq, id, type, topic, \`key\`, payload, headers, content_encoding FROM ${tables.outbox}
           WHERE status = 'pending' ORDER BY seq LIMIT ? FOR UPDATE SKIP LOCKED`,
          [limit],
        );
        const fetched = rows as { seq: number | string; headers: string }[];
        moved = fetched.length;
        if (moved === 0) return;
        // the headers a publisher needs as an object
        for (const r of fetched) JSON.parse(r.headers);
        await c.query(`UPDATE ${tables.outbox} SET status = 'published', published_at = ? WHERE seq IN (?)`, [
          Date.now(),
          fetched.map((r) => r.seq),
        ]);
      });
      return moved;
    },
    async close() {
      await pool.query(`DROP TABLE IF EXISTS ${tables.outbox}, ${tables.inbox}, ${business}`);
      await pool.end();
    },
  });
}
