import type { SqliteDatabase } from '@cqrs-ts/sqlite';
import type { ProjectionCounters } from '@cqrs-ts/testing/contracts';

/** Counter tables of the projection contract, named `<prefix>_<table>`. */
export function sqliteCounters(db: SqliteDatabase, prefix: string): ProjectionCounters<SqliteDatabase> {
  const name = (table: string) => `${prefix}_${table}`;
  return {
    async create(table) {
      db.exec(`CREATE TABLE IF NOT EXISTS ${name(table)} (id TEXT PRIMARY KEY, n INTEGER NOT NULL)`);
      db.exec(`DELETE FROM ${name(table)}`);
    },
    async bump(tx, table, id) {
      tx.prepare(
        `INSERT INTO ${name(table)} (id, n) VALUES (?, 1) ON CONFLICT (id) DO UPDATE SET n = n + 1`,
      ).run(id);
    },
    async read(table) {
      const rows = db.prepare(`SELECT id, n FROM ${name(table)}`).all() as { id: string; n: number }[];
      return new Map(rows.map((r) => [r.id, Number(r.n)]));
    },
    async clear(tx, table) {
      tx.exec(`DELETE FROM ${name(table)}`);
    },
  };
}
