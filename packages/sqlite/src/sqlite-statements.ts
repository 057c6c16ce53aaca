import type { SqliteDatabase, SqliteStatement } from './sqlite-options.ts';

/**
 * Prepared statements by connection and SQL text, prepared on first use: preparing costs more than running a
 * statement. Weakly held by connection; at most `limit` texts per connection are kept. @internal
 */
export function createStatementCache(limit = 256): (on: SqliteDatabase, sql: string) => SqliteStatement {
  const statements = new WeakMap<SqliteDatabase, Map<string, SqliteStatement>>();
  return (on, sql) => {
    let cache = statements.get(on);
    if (cache === undefined) {
      cache = new Map();
      statements.set(on, cache);
    }
    let s = cache.get(sql);
    if (s === undefined) {
      s = on.prepare(sql);
      if (cache.size < limit) cache.set(sql, s);
    }
    return s;
  };
}
