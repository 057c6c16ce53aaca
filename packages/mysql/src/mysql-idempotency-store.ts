import type { IdempotencyStore } from '@cqrs-ts/core/spi';
import { createSqlIdempotencyStore } from '@cqrs-ts/core/sql';
import { toStorageError } from './mysql-errors.ts';
import { execOf } from './mysql-executor.ts';
import type { MysqlClient, MysqlTables, MysqlTransaction } from './mysql-options.ts';
import { resolveTables } from './schema.ts';

/** Options of {@link createMysqlIdempotencyStore}. */
export interface MysqlIdempotencyStoreOptions {
  /** Reads replays outside any transaction: a mysql2/promise pool or a Kysely instance. */
  readonly client: MysqlClient;
  /** `inbox` names the table (the inbox table, with its `fingerprint` and `result` columns). */
  readonly tables?: MysqlTables;
}

/**
 * The MariaDB/MySQL {@link IdempotencyStore} of a unit of work: records are rows of the inbox table (consumer
 * `cqrs:idempotency`). A claim is `INSERT IGNORE` in the command's transaction: a second claim of the same key
 * waits on the row lock of the first, then reads what it committed with a locking read (which sees the latest
 * committed row whatever the transaction's repeatable-read snapshot).
 */
export function createMysqlIdempotencyStore(
  options: MysqlIdempotencyStoreOptions,
): IdempotencyStore<MysqlTransaction> {
  const t = resolveTables(options.tables).inbox;
  const findSql = `SELECT fingerprint, result FROM ${t} WHERE message_id = ? AND consumer = ?`;
  const claimSql = `INSERT IGNORE INTO ${t} (message_id, consumer, processed_at, fingerprint) VALUES (?, ?, ?, ?)`;
  const completeSql = `UPDATE ${t} SET result = ? WHERE message_id = ? AND consumer = ?`;
  return createSqlIdempotencyStore<MysqlTransaction>({
    find: async (id, consumer) => (await execOf(options.client)(findSql, [id, consumer])).rows[0],
    insert: async (tx, id, consumer, now, fingerprint) =>
      (await execOf(tx)(claimSql, [id, consumer, now, fingerprint])).count,
    read: async (tx, id, consumer) =>
      (await execOf(tx)(`${findSql} LOCK IN SHARE MODE`, [id, consumer])).rows[0],
    complete: (tx, id, consumer, result) => execOf(tx)(completeSql, [result, id, consumer]),
    toStorageError,
  });
}
