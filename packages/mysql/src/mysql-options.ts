import type { OutboxEncoderOptions, OutboxStore } from '@cqrs-ts/core/spi';
import type { SqlTableNames } from '@cqrs-ts/core/sql';

/** A mysql2/promise `Pool`, `PoolConnection` or `Connection` (the `query(sql, values)` part). */
export interface Mysql2Queryable {
  query(sql: string, values?: unknown[]): Promise<[unknown, unknown]>;
}

/** A mysql2/promise pool: the relay takes a connection of its own for each claim transaction. */
export interface Mysql2Pool extends Mysql2Queryable {
  getConnection(): Promise<Mysql2Queryable & { release(): void }>;
}

/** A Kysely instance or `Transaction` (the `executeQuery` part). */
export interface KyselyMysqlExecutor {
  executeQuery(query: {
    readonly sql: string;
    readonly parameters: readonly unknown[];
    readonly query: {
      readonly kind: 'RawNode';
      readonly sqlFragments: readonly string[];
      readonly parameters: readonly [];
    };
    readonly queryId: { readonly queryId: string };
  }): Promise<{ rows: unknown[]; numAffectedRows?: bigint }>;
}

/** A Kysely instance (it runs the claim in `transaction().execute`). */
export interface KyselyMysql extends KyselyMysqlExecutor {
  transaction(): { execute<T>(fn: (trx: KyselyMysqlExecutor) => Promise<T>): Promise<T> };
}

/** Client for relay work: a mysql2 pool or a Kysely instance. You own it and end it after the relay stopped. */
export type MysqlClient = Mysql2Pool | KyselyMysql;
/** The caller's transaction: a mysql2 connection after `beginTransaction()`, or a Kysely `Transaction`. */
export type MysqlTransaction = Mysql2Queryable | KyselyMysqlExecutor;

/** Table names (`name` or `schema.name`); defaults `cqrs_outbox`, `cqrs_inbox`, `cqrs_saga`, `cqrs_saga_log`. */
export type MysqlTables = SqlTableNames;

/** Options of {@link createMysqlOutboxStore}. */
export interface MysqlOutboxStoreOptions extends OutboxEncoderOptions {
  readonly client: MysqlClient;
  readonly tables?: MysqlTables;
  /** Clock for `created_at`, epoch ms. @default Date.now */
  readonly now?: () => number;
}

/** Options of {@link createMysqlInboxStore}. */
export interface MysqlInboxStoreOptions {
  readonly client: MysqlClient;
  readonly tables?: MysqlTables;
}

/** Options of {@link createMysqlSagaStore}. */
export interface MysqlSagaStoreOptions {
  /**
   * A mysql2/promise pool or a Kysely instance (not a transaction: every store method is atomic on its own).
   * Keep mysql2's default `FOUND_ROWS` flag: guards read the matched-row count.
   */
  readonly client: MysqlClient;
  /** `saga` and `sagaLog` name the tables; `outbox` is ignored (the outbox store has its own). */
  readonly tables?: MysqlTables;
  /** Stage step events in this outbox in the commit's transaction (`capabilities.outbox`). */
  readonly outbox?: OutboxStore<MysqlTransaction>;
  /**
   * Largest context, result or error text accepted, in UTF-8 bytes; a larger one is refused with a
   * PayloadTooLargeError before anything is written. Keep it well below the server's `max_allowed_packet`.
   * @default 4 MiB
   */
  readonly maxTextBytes?: number;
  /**
   * Called with the SerializationError of each row `findRecoverable` or `list` cannot map (a corrupted row);
   * the row is left out and the other rows are returned. `load`, `acquire` and `history` throw it instead.
   * @default a process warning
   */
  readonly onCorruptRow?: (error: Error) => void;
}
