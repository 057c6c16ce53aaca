import { ConfigurationError, type UnitOfWork } from '@cqrs-ts/core';
import { createUnitOfWork, type UnitOfWorkStoreOptions } from '@cqrs-ts/core/spi';
import { toStorageError } from './postgres-errors.ts';
import { transactionOf } from './postgres-executor.ts';
import { createPostgresIdempotencyStore } from './postgres-idempotency-store.ts';
import type { KyselyTransactional, PgPoolLike, PostgresJsBegin } from './postgres-inbox-guard.ts';
import type { PostgresClient, PostgresTables } from './postgres-options.ts';

/** A client a unit of work can open transactions on: a pg `Pool`, a postgres.js `sql` or a Kysely instance. */
export type PostgresTransactional = PgPoolLike | PostgresJsBegin | KyselyTransactional;

/**
 * What handlers receive from a unit of work over `TClient`, inferred from the client's own types: a pg
 * `PoolClient` for a `Pool`, a `TransactionSql` for a postgres.js `Sql`, a `Transaction<DB>` for a `Kysely<DB>`.
 */
export type PostgresTransactionOf<TClient> = TClient extends {
  transaction(): { execute<T>(fn: (trx: infer TTx) => Promise<T>): Promise<T> };
}
  ? TTx
  : TClient extends { begin(options: string, fn: (sql: infer TTx) => unknown): unknown }
    ? TTx
    : TClient extends { connect(callback: (error: never, client: infer TTx, done: never) => void): void }
      ? Exclude<TTx, undefined>
      : TClient extends { connect(): Promise<infer TTx> }
        ? TTx
        : never;

/** Options of {@link createPostgresUnitOfWork}. */
export interface PostgresUnitOfWorkOptions<TClient extends PostgresTransactional>
  extends UnitOfWorkStoreOptions<PostgresClient> {
  /** A pg `Pool`, a postgres.js `sql` or a Kysely instance: each command's transaction is opened on it. */
  readonly client: TClient;
  /** `inbox` names the table of the default idempotency store. */
  readonly tables?: PostgresTables;
}

/**
 * The transaction behavior on PostgreSQL: one transaction per command on `client`, reachable by the handler as
 * `unitOfWork.transaction(ctx)` (typed after the client: `pg.PoolClient`, `TransactionSql`,
 * `Transaction<DB>`); the events the handler recorded are appended to `outbox` in it before the commit.
 * Idempotency keys are kept in the inbox table. Add it to the mediator's behaviors inside `retry()` and
 * `timeout()`.
 *
 * @example
 * const unitOfWork = createPostgresUnitOfWork({ client: pool, outbox: createPostgresOutboxStore({ client: pool }) });
 * const mediator = createMediator({ behaviors: [retry(), unitOfWork], handlers: [...] });
 * // in a handler: await unitOfWork.transaction(ctx).query('INSERT ...', [...]); ctx.emit(OrderPlaced, {...});
 * @throws ConfigurationError when `client` cannot open transactions (a single `Client`, a checked-out
 *   `PoolClient`, a transaction), or `outbox` is missing
 */
export function createPostgresUnitOfWork<TClient extends PostgresTransactional>(
  options: PostgresUnitOfWorkOptions<TClient>,
): UnitOfWork<PostgresTransactionOf<TClient>> {
  const client = options?.client as unknown as PostgresClient;
  const transact = client === undefined || client === null ? undefined : transactionOf(client);
  if (transact === undefined) {
    throw new ConfigurationError(
      'postgres unit of work: client must be a pg Pool, a postgres.js sql or a Kysely instance (not a Client, a checked-out PoolClient or a transaction)',
    );
  }
  const tables = options.tables;
  // Its own store sends a pg pool transaction's BEGIN with the claim of a keyed command, in one round trip.
  const own = options.idempotency === undefined;
  return createUnitOfWork<PostgresClient>({
    ...options,
    name: 'postgres unit of work',
    resource: client as object,
    transactions: {
      run: (work, run) => transact((_execute, tx) => work(tx), own && run?.claimFirst === true),
    },
    idempotency:
      options.idempotency ??
      createPostgresIdempotencyStore({ client, ...(tables !== undefined ? { tables } : {}) }),
    toStorageError,
  }) as unknown as UnitOfWork<PostgresTransactionOf<TClient>>;
}
