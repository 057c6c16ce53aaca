import type { PostgresClient } from '@cqrs-ts/postgres';
import type { ProjectionCounters } from '@cqrs-ts/testing/contracts';
import type pg from 'pg';
import { executorOf } from '../src/postgres-executor.ts';

/** Counter tables of the projection contract, named `<prefix>_<table>`, written with any client flavor. */
export function pgCounters(pool: pg.Pool, prefix: string): ProjectionCounters<PostgresClient> {
  const name = (table: string) => `${prefix}_${table}`;
  return {
    async create(table) {
      await pool.query(`CREATE TABLE IF NOT EXISTS ${name(table)} (id TEXT PRIMARY KEY, n INT NOT NULL)`);
      await pool.query(`TRUNCATE ${name(table)}`);
    },
    async bump(tx, table, id) {
      await executorOf(tx)(
        `INSERT INTO ${name(table)} AS t (id, n) VALUES ($1, 1) ON CONFLICT (id) DO UPDATE SET n = t.n + 1`,
        [id],
      );
    },
    async read(table) {
      const r = await pool.query(`SELECT id, n FROM ${name(table)}`);
      return new Map(r.rows.map((row: { id: string; n: number }) => [row.id, Number(row.n)]));
    },
    async clear(tx, table) {
      await executorOf(tx)(`DELETE FROM ${name(table)}`, []);
    },
  };
}
