import { ConfigurationError, type UnitOfWork } from '@cqrs-ts/core';
import {
  createUnitOfWork,
  type IdempotencyStore,
  type OutboxStore,
  type TransactionRunner,
} from '@cqrs-ts/core/spi';
import { toStorageError } from './mysql-errors.ts';
import { inTransaction } from './mysql-executor.ts';
import { createMysqlIdempotencyStore } from './mysql-idempotency-store.ts';
import type { MysqlClient, MysqlTables, MysqlTransaction } from './mysql-options.ts';

/**
 * What handlers receive from a unit of work over `TClient`, inferred from the client's own types: a mysql2
 * `PoolConnection` for a mysql2/promise `Pool`, a `Transaction<DB>` for a `Kysely<DB>`.
 */
export type MysqlTransactionOf<TClient> = TClient extends {
  transaction(): { execute<T>(fn: (trx: infer TTx) => Promise<T>): Promise<T> };
}
  ? TTx
  : TClient extends { getConnection(): Promise<infer TTx> }
    ? TTx
    : never;

/** Options of {@link createMysqlUnitOfWork}. */
export interface MysqlUnitOfWorkOptions<TClient extends MysqlClient> {
  /** A mysql2/promise pool or a Kysely instance: each command's transaction is opened on it. */
  readonly client: TClient;
  /** The outbox the events are appended to: a `createMysqlOutboxStore` store over the same database. */
  readonly outbox: OutboxStore<MysqlTransaction>;
  /**
   * Where the results of commands with an idempotency key are kept; `false` refuses such commands.
   * @default a `createMysqlIdempotencyStore` over `client` and `tables.inbox`
   */
  readonly idempotency?: IdempotencyStore<MysqlTransaction> | false;
  /** `inbox` names the table of the default idempotency store. */
  readonly tables?: MysqlTables;
  /** Largest serialized result kept for replay, in UTF-8 bytes. @default 1 MiB */
  readonly maxResultBytes?: number;
}

function canTransact(client: unknown): boolean {
  const c = client as {
    transaction?: unknown;
    executeQuery?: unknown;
    getConnection?: unknown;
    release?: unknown;
  };
  if (typeof c !== 'object' || c === null) return false;
  if (typeof c.executeQuery === 'function') return typeof c.transaction === 'function';
  return typeof c.getConnection === 'function' && typeof c.release !== 'function';
}

/**
 * The transaction behavior on MariaDB/MySQL: one transaction per command on `client` (a mysql2 pool
 * connection, or a Kysely transaction), reachable by the handler as `unitOfWork.transaction(ctx)`, typed after
 * the client; the events the handler recorded are appended to `outbox` in it before the commit. Idempotency
 * keys are kept in the inbox table. Add it to the mediator's behaviors inside `retry()` and `timeout()`.
 * @throws ConfigurationError when `client` cannot open transactions (a single connection, a transaction), or
 *   `outbox` is missing
 */
export function createMysqlUnitOfWork<TClient extends MysqlClient>(
  options: MysqlUnitOfWorkOptions<TClient>,
): UnitOfWork<MysqlTransactionOf<TClient>> {
  const client = options?.client;
  if (!canTransact(client)) {
    throw new ConfigurationError(
      'mysql unit of work: client must be a mysql2/promise pool or a Kysely instance (not a connection or a transaction)',
    );
  }
  const transactions: TransactionRunner<MysqlTransaction> = {
    async run(work) {
      let thrown: { error: unknown } | undefined;
      try {
        return await inTransaction(client, async (_execute, tx) => {
          try {
            return await work(tx);
          } catch (error) {
            thrown = { error };
            throw error;
          }
        });
      } catch (error) {
        if (thrown !== undefined && thrown.error === error) throw error;
        throw toStorageError(error, 'unit of work transaction');
      }
    },
  };
  const idempotency =
    options.idempotency === false
      ? undefined
      : (options.idempotency ??
        createMysqlIdempotencyStore({
          client,
          ...(options.tables !== undefined ? { tables: options.tables } : {}),
        }));
  return createUnitOfWork({
    name: 'mysql unit of work',
    transactions,
    outbox: options.outbox,
    ...(idempotency !== undefined ? { idempotency } : {}),
    ...(options.maxResultBytes !== undefined ? { maxResultBytes: options.maxResultBytes } : {}),
  }) as unknown as UnitOfWork<MysqlTransactionOf<TClient>>;
}
