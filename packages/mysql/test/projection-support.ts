import type { MysqlTransaction } from '@cqrs-ts/mysql';
import type { ProjectionCounters } from '@cqrs-ts/testing/contracts';
import type mysql from 'mysql2/promise';
import { execOf } from '../src/mysql-executor.ts';

/** Counter tables of the projection contract, named `<prefix>_<table>`, written with either client flavor. */
export function mysqlCounters(pool: mysql.Pool, prefix: string): ProjectionCounters<MysqlTransaction> {
  const name = (table: string) => `${prefix}_${table}`;
  return {
    async create(table) {
      await pool.query(
        `CREATE TABLE IF NOT EXISTS ${name(table)} (id VARCHAR(64) NOT NULL PRIMARY KEY, n INT NOT NULL) ENGINE=InnoDB`,
      );
      await pool.query(`DELETE FROM ${name(table)}`);
    },
    async bump(tx, table, id) {
      await execOf(tx)(`INSERT INTO ${name(table)} (id, n) VALUES (?, 1) ON DUPLICATE KEY UPDATE n = n + 1`, [
        id,
      ]);
    },
    async read(table) {
      const [rows] = await pool.query(`SELECT id, n FROM ${name(table)}`);
      return new Map((rows as { id: string; n: number }[]).map((r) => [r.id, Number(r.n)]));
    },
    async clear(tx, table) {
      await execOf(tx)(`DELETE FROM ${name(table)}`, []);
    },
  };
}
