import { ConfigurationError } from '@cqrs-ts/core';
import type { ProjectionStore } from '@cqrs-ts/core/spi';
import { createSqlProjectionStore } from '@cqrs-ts/core/sql';
import { resolveTables } from './schema.ts';
import { serialize } from './sqlite-connection-lock.ts';
import { toStorageError } from './sqlite-errors.ts';
import type { SqliteDatabase, SqliteStatement, SqliteTables, SqliteValue } from './sqlite-options.ts';

/** Options of {@link createSqliteProjectionStore}. */
export interface SqliteProjectionStoreOptions {
  /**
   * The connection of the read models (a node:sqlite `DatabaseSync`). Its transactions, and the store's own
   * statements, queue with every unit of work on the same connection.
   */
  readonly database: SqliteDatabase;
  /** `projection`, `projectionDocument` and `projectionParked` name the tables. */
  readonly tables?: SqliteTables;
}

/**
 * Projection checkpoints with their lease, documents (JSON text with a version) and parked events on SQLite.
 * The runner's transactions are `BEGIN IMMEDIATE … COMMIT` on `database`: one writer at a time, so a batch,
 * its read-model writes and its checkpoint commit together and a runner in another process waits for them.
 * @throws ConfigurationError when `database` is not a node:sqlite database, or for a bad table name
 */
export function createSqliteProjectionStore(
  options: SqliteProjectionStoreOptions,
): ProjectionStore<SqliteDatabase> {
  const db = options?.database;
  if (typeof db?.exec !== 'function' || typeof db.prepare !== 'function')
    throw new ConfigurationError('sqlite projection store: database must be a node:sqlite DatabaseSync');
  const t = resolveTables(options.tables);
  const statements = new Map<string, SqliteStatement>();
  const prepared = (sql: string) => {
    let s = statements.get(sql);
    if (s === undefined) {
      s = db.prepare(sql);
      if (statements.size < 256) statements.set(sql, s);
    }
    return s;
  };
  const exec = (sql: string, params: readonly unknown[]) => {
    const s = prepared(sql);
    if (/^\s*SELECT/i.test(sql)) {
      const rows = s.all(...(params as SqliteValue[])) as Record<string, unknown>[];
      return { rows, count: rows.length };
    }
    return { rows: [], count: Number(s.run(...(params as SqliteValue[])).changes) };
  };
  return createSqlProjectionStore<SqliteDatabase>({
    adapter: 'sqlite',
    tables: { checkpoints: t.projection, documents: t.projectionDocument, parked: t.projectionParked },
    // Outside a transaction, wait for the connection's queue: a statement run while a unit of work's
    // transaction is open on it would join that transaction.
    execute: async (tx, sql, params) =>
      tx === undefined ? serialize(db, async () => exec(sql, params)) : exec(sql, params),
    transaction: (work) =>
      serialize(db, async () => {
        db.exec('BEGIN IMMEDIATE');
        try {
          const result = await work(db);
          db.exec('COMMIT');
          return result;
        } catch (error) {
          try {
            if (db.isTransaction !== false) db.exec('ROLLBACK');
          } catch {
            // the transaction is already gone
          }
          throw error;
        }
      }),
    param: () => '?',
    insertIgnore: (table, rest) => `INSERT OR IGNORE INTO ${table} ${rest}`,
    upsertDocs:
      'ON CONFLICT (name, version, id) DO UPDATE SET doc = excluded.doc, doc_version = excluded.doc_version, updated_at = excluded.updated_at',
    toStorageError,
  });
}
