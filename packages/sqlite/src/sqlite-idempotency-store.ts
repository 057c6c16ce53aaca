import type { IdempotencyStore } from '@cqrs-ts/core/spi';
import { createSqlIdempotencyStore, type IdempotencyRow } from '@cqrs-ts/core/sql';
import { resolveTables } from './schema.ts';
import { serialize } from './sqlite-connection-lock.ts';
import { toStorageError } from './sqlite-errors.ts';
import type { SqliteDatabase, SqliteTables } from './sqlite-options.ts';
import { createStatementCache } from './sqlite-statements.ts';

/** Options of {@link createSqliteIdempotencyStore}. */
export interface SqliteIdempotencyStoreOptions {
  /** The connection the unit of work writes with (replays are read on it, between its transactions). */
  readonly database: SqliteDatabase;
  /** `inbox` names the table (the inbox table, with its `fingerprint` and `result` columns). */
  readonly tables?: SqliteTables;
}

/**
 * The SQLite {@link IdempotencyStore} of a unit of work: records are rows of the inbox table (consumer
 * `cqrs:idempotency`). Transactions on one connection run one after another, so a repeat of a key waits for the
 * first command's transaction to end; other processes on the same file wait on its write lock (`busy_timeout`).
 */
export function createSqliteIdempotencyStore(
  options: SqliteIdempotencyStoreOptions,
): IdempotencyStore<SqliteDatabase> {
  const db = options.database;
  const t = resolveTables(options.tables).inbox;
  const findSql = `SELECT fingerprint, result FROM ${t} WHERE message_id = ? AND consumer = ?`;
  const claimSql = `INSERT INTO ${t} (message_id, consumer, processed_at, fingerprint) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`;
  const completeSql = `UPDATE ${t} SET result = ? WHERE message_id = ? AND consumer = ?`;
  const stmt = createStatementCache();
  const read = (database: SqliteDatabase, id: string, consumer: string) =>
    stmt(database, findSql).all(id, consumer)[0] as IdempotencyRow | undefined;
  return createSqlIdempotencyStore<SqliteDatabase>({
    // Read between the connection's transactions, never inside another command's uncommitted one.
    find: (id, consumer) => serialize(db, async () => read(db, id, consumer)),
    insert: (tx, id, consumer, now, fingerprint) =>
      Number(stmt(tx, claimSql).run(id, consumer, now, fingerprint).changes),
    read,
    complete: (tx, id, consumer, result) => stmt(tx, completeSql).run(result, id, consumer),
    toStorageError,
  });
}
