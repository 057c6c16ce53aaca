/**
 * @cqrs-ts/sqlite: transactional outbox, inbox and saga stores, the event log with streams, and state-based
 * aggregate repositories on the built-in node:sqlite.
 * @module
 */
export { migrate, schemaSql } from './schema.ts';
export { classifySqliteError } from './sqlite-errors.ts';
export type { SqliteEventStore, SqliteEventStoreOptions } from './sqlite-event-store.ts';
export { createSqliteEventStore } from './sqlite-event-store.ts';
export type { SqliteIdempotencyStoreOptions } from './sqlite-idempotency-store.ts';
export { createSqliteIdempotencyStore } from './sqlite-idempotency-store.ts';
export type { SqliteInboxGuardOptions } from './sqlite-inbox-guard.ts';
export { createSqliteInboxGuard } from './sqlite-inbox-guard.ts';
export { createSqliteInboxStore } from './sqlite-inbox-store.ts';
export type {
  SqliteDatabase,
  SqliteInboxStoreOptions,
  SqliteOutboxStoreOptions,
  SqliteSagaStoreOptions,
  SqliteStatement,
  SqliteTables,
  SqliteValue,
} from './sqlite-options.ts';
export { createSqliteOutboxStore } from './sqlite-outbox-store.ts';
export type { SqliteProjectionStoreOptions } from './sqlite-projection-store.ts';
export { createSqliteProjectionStore } from './sqlite-projection-store.ts';
export { createSqliteSagaStore } from './sqlite-saga-store.ts';
export type { SqliteStateRepositoryOptions } from './sqlite-state-repository.ts';
export { createSqliteStateRepository } from './sqlite-state-repository.ts';
export type { SqliteUnitOfWorkOptions } from './sqlite-unit-of-work.ts';
export { createSqliteUnitOfWork } from './sqlite-unit-of-work.ts';
