/**
 * `@cqrs-ts/core/sql`: helpers shared by the SQL storage adapters (Postgres, MariaDB/MySQL, SQLite): table-name
 * checks, the outbox row codec and the saga row checks and mappers. They assume the column names the adapters'
 * migrations create.
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
export { outboxRecordFromRow, parseHeaders } from './sql/sql-outbox-rows.ts';
export type { PositionalQuery } from './sql/sql-saga-rows.ts';
export {
  checkSagaQuery,
  checkSagaWrite,
  mapSagaRows,
  SAGA_DEFAULT_MAX_TEXT_BYTES,
  SAGA_MAX_KEY_LENGTH,
  sagaCommitLease,
  sagaListQuery,
  sagaLogEntryFromRow,
  sagaRecordFromRow,
  sagaRecoverableQuery,
} from './sql/sql-saga-rows.ts';
