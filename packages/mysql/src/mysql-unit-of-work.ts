import { ConfigurationError, type UnitOfWork } from '@cqrs-ts/core';
import { createUnitOfWork, type UnitOfWorkStoreOptions } from '@cqrs-ts/core/spi';
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
export interface MysqlUnitOfWorkOptions<TClient extends MysqlClient>
  extends UnitOfWorkStoreOptions<MysqlTransaction> {
  /** A mysql2/promise pool or a Kysely instance: each command's transaction is opened on it. */
  readonly client: TClient;
  /** `inbox` names the table of the default idempotency store. */
  readonly tables?: MysqlTables;
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
  const tables = options.tables;
  // Its own store starts a mysql2 transaction with the claim of a keyed command, in one round trip.
  const own = options.idempotency === undefined;
  return createUnitOfWork<MysqlTransaction>({
    ...options,
    name: 'mysql unit of work',
    resource: client as object,
    transactions: {
      run: (work, run) => inTransaction(client, (_execute, tx) => work(tx), own && run?.claimFirst === true),
    },
    idempotency:
      options.idempotency ??
      createMysqlIdempotencyStore({ client, ...(tables !== undefined ? { tables } : {}) }),
    toStorageError,
  }) as unknown as UnitOfWork<MysqlTransactionOf<TClient>>;
}
