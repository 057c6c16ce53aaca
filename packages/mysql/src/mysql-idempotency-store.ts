import { IDEMPOTENCY_CONSUMER, type IdempotencyRecord, type IdempotencyStore } from '@cqrs-ts/core/spi';
import { toStorageError } from './mysql-errors.ts';
import { type Execute, execOf } from './mysql-executor.ts';
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
 * waits on the row lock of the first, then reads what it committed with a locking read.
 */
export function createMysqlIdempotencyStore(
  options: MysqlIdempotencyStoreOptions,
): IdempotencyStore<MysqlTransaction> {
  const t = resolveTables(options.tables).inbox;
  const findSql = `SELECT fingerprint, result FROM ${t} WHERE message_id = ? AND consumer = ?`;
  const claimSql = `INSERT IGNORE INTO ${t} (message_id, consumer, processed_at, fingerprint) VALUES (?, ?, ?, ?)`;
  const completeSql = `UPDATE ${t} SET result = ? WHERE message_id = ? AND consumer = ?`;
  const read = async (execute: Execute, sql: string, id: string): Promise<IdempotencyRecord | undefined> => {
    const row = (await execute(sql, [id, IDEMPOTENCY_CONSUMER])).rows[0];
    if (row === undefined) return undefined;
    return {
      fingerprint: (row.fingerprint as string | null) ?? null,
      result: (row.result as string | null) ?? null,
    };
  };
  return {
    async find(id) {
      try {
        return await read(execOf(options.client), findSql, id);
      } catch (error) {
        throw toStorageError(error, 'idempotency find');
      }
    },
    async claim(tx, id, fingerprint, now) {
      const execute = execOf(tx);
      try {
        for (;;) {
          const inserted = await execute(claimSql, [id, IDEMPOTENCY_CONSUMER, now, fingerprint]);
          if (inserted.count === 1) return undefined;
          // A locking read sees the latest committed row whatever the transaction's snapshot (repeatable read).
          const found = await read(execute, `${findSql} LOCK IN SHARE MODE`, id);
          if (found !== undefined) return found;
        }
      } catch (error) {
        throw toStorageError(error, 'idempotency claim');
      }
    },
    async complete(tx, id, result) {
      try {
        await execOf(tx)(completeSql, [result, id, IDEMPOTENCY_CONSUMER]);
      } catch (error) {
        throw toStorageError(error, 'idempotency complete');
      }
    },
  };
}
