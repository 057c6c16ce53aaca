/**
 * `@cqrs-ts/core/sql`: what the SQL storage adapters (Postgres, MariaDB/MySQL, SQLite) share: table names, the
 * inbox store over two statements, the outbox table's maintenance statements and row codec, raw SQL on Kysely,
 * the saga store over a dialect's statements with its row checks and mappers, and the column mapping of state
 * repositories. They assume the column names the
 * adapters' migrations create.
 * @module
 */

export type { IdempotencyRow, SqlIdempotencyStoreOptions } from './sql/sql-idempotency-store.ts';
export { createSqlIdempotencyStore } from './sql/sql-idempotency-store.ts';
export type { SqlTableNames } from './sql/sql-identifiers.ts';
export {
  assertTableName,
  DEFAULT_TABLE_NAMES,
  resolveTableNames,
  TABLE_NAME_RE,
} from './sql/sql-identifiers.ts';
export type { SqlInboxStoreOptions } from './sql/sql-inbox-store.ts';
export { createSqlInboxStore } from './sql/sql-inbox-store.ts';
export type { KyselyExecutorLike } from './sql/sql-kysely.ts';
export { executeKyselyQuery } from './sql/sql-kysely.ts';
export type {
  SqlOutboxOperations,
  SqlOutboxOperationsOptions,
  SqlRunResult,
} from './sql/sql-outbox-operations.ts';
export { createSqlOutboxOperations } from './sql/sql-outbox-operations.ts';
export { logEntryFromRow, outboxRecordFromRow, parseHeaders } from './sql/sql-outbox-rows.ts';
export type { SqlParamType, SqlProjectionStoreSpec } from './sql/sql-projection-store.ts';
export { createSqlProjectionStore } from './sql/sql-projection-store.ts';
export type { PositionalQuery, SqlSagaStoreOptions } from './sql/sql-saga-rows.ts';
export {
  checkSagaQuery,
  checkSagaWrite,
  mapSagaRows,
  SAGA_DEFAULT_MAX_TEXT_BYTES,
  SAGA_LOG_COLUMNS,
  SAGA_MAX_KEY_LENGTH,
  sagaAcquireParams,
  sagaCommitLease,
  sagaCountQuery,
  sagaInsertParams,
  sagaListQuery,
  sagaLogEntryFromRow,
  sagaPositionalStatements,
  sagaRecordFromRow,
  sagaRecoverableQuery,
} from './sql/sql-saga-rows.ts';
export type { SqlSagaStatements, SqlSagaStoreSpec } from './sql/sql-saga-store.ts';
export { createSqlSagaStore } from './sql/sql-saga-store.ts';
export type { StateColumns, StateTableOptions } from './sql/sql-state-table.ts';
export { stateColumns } from './sql/sql-state-table.ts';
