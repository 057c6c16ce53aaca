import type { IdempotencyStore } from '@cqrs-ts/core/spi';
import { createSqlIdempotencyStore, type IdempotencyRow } from '@cqrs-ts/core/sql';
import { toStorageError } from './mysql-errors.ts';
import { execOf, flushCommitTail, markCommitted, sendWithCommit, takeBegin } from './mysql-executor.ts';
import type { Mysql2Queryable, MysqlClient, MysqlTables, MysqlTransaction } from './mysql-options.ts';
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
 * committed row whatever the transaction's repeatable-read snapshot). In a mysql2 transaction of the unit of work
 * on MariaDB, the claim starts the transaction and, for a key already done, reads its record and commits, in one
 * compound statement (`BEGIN NOT ATOMIC … END`); the result's UPDATE goes in the COMMIT's round trip. A first
 * keyed send then costs the round trips of the same send without a key, a replay one.
 */
export function createMysqlIdempotencyStore(
  options: MysqlIdempotencyStoreOptions,
): IdempotencyStore<MysqlTransaction> {
  const t = resolveTables(options.tables).inbox;
  const findSql = `SELECT fingerprint, result FROM ${t} WHERE message_id = ? AND consumer = ?`;
  const claimSql = `INSERT IGNORE INTO ${t} (message_id, consumer, processed_at, fingerprint) VALUES (?, ?, ?, ?)`;
  const completeSql = `UPDATE ${t} SET result = ? WHERE message_id = ? AND consumer = ?`;
  // MariaDB: the transaction's start, the claim and, for a key already done, the read of its record and the
  // commit, in one compound statement. MySQL has no anonymous blocks (a syntax error): one statement each.
  const openSql = `BEGIN NOT ATOMIC START TRANSACTION; ${claimSql}; IF ROW_COUNT() = 0 THEN ${findSql} LOCK IN SHARE MODE; IF FOUND_ROWS() = 1 THEN COMMIT; END IF; END IF; END`;
  let compound = true;
  /** The first statement of a transaction of the unit of work: resolves like `insert`. */
  const open = async (
    tx: Mysql2Queryable,
    id: string,
    consumer: string,
    now: number,
    fingerprint: string,
  ) => {
    if (compound) {
      try {
        const [result] = await tx.query(openSql, [id, consumer, now, fingerprint, id, consumer]);
        const found = Array.isArray(result) ? result.find(Array.isArray) : undefined;
        if (found === undefined) return 1;
        const row = found[0] as IdempotencyRow | undefined;
        if (row === undefined) return 0;
        markCommitted(tx);
        return row;
      } catch (error) {
        if ((error as { errno?: number })?.errno !== 1064) throw error;
        compound = false;
      }
    }
    await tx.query('START TRANSACTION');
    return (await execOf(tx)(claimSql, [id, consumer, now, fingerprint])).count;
  };
  return createSqlIdempotencyStore<MysqlTransaction>({
    find: async (id, consumer) => (await execOf(options.client)(findSql, [id, consumer])).rows[0],
    insert: async (tx, id, consumer, now, fingerprint) => {
      if (takeBegin(tx)) return open(tx as Mysql2Queryable, id, consumer, now, fingerprint);
      // A result queued for the commit is written first: a nested send of its key then replays it.
      await flushCommitTail(tx);
      return (await execOf(tx)(claimSql, [id, consumer, now, fingerprint])).count;
    },
    read: async (tx, id, consumer) =>
      (await execOf(tx)(`${findSql} LOCK IN SHARE MODE`, [id, consumer])).rows[0],
    complete: async (tx, id, consumer, result) => {
      const statement = { sql: completeSql, values: [result, id, consumer] };
      if (!(compound && sendWithCommit(tx, statement))) await execOf(tx)(completeSql, statement.values);
    },
    toStorageError,
  });
}
