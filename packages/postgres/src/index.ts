/**
 * @cqrs-ts/postgres: transactional outbox, inbox and saga stores, the event log with streams, and state-based
 * aggregate repositories for PostgreSQL over pg, postgres.js or Kysely.
 * @module
 */
export { classifyPostgresError } from './postgres-errors.ts';
export type { PostgresEventStore, PostgresEventStoreOptions } from './postgres-event-store.ts';
export { createPostgresEventStore } from './postgres-event-store.ts';
export type { PostgresIdempotencyStoreOptions } from './postgres-idempotency-store.ts';
export { createPostgresIdempotencyStore } from './postgres-idempotency-store.ts';
export type {
  KyselyTransactional,
  PgPoolLike,
  PostgresInboxGuardOptions,
  PostgresJsBegin,
} from './postgres-inbox-guard.ts';
export { createPostgresInboxGuard } from './postgres-inbox-guard.ts';
export { createPostgresInboxStore } from './postgres-inbox-store.ts';
export type {
  KyselyExecutor,
  PgQueryable,
  PostgresClient,
  PostgresInboxStoreOptions,
  PostgresJsSql,
  PostgresOutboxStoreOptions,
  PostgresSagaStoreOptions,
  PostgresTables,
} from './postgres-options.ts';
export { createPostgresOutboxStore } from './postgres-outbox-store.ts';
export type { PostgresProjectionStoreOptions } from './postgres-projection-store.ts';
export { createPostgresProjectionStore } from './postgres-projection-store.ts';
export { createPostgresSagaStore } from './postgres-saga-store.ts';
export type { PostgresStateRepositoryOptions } from './postgres-state-repository.ts';
export { createPostgresStateRepository } from './postgres-state-repository.ts';
export type {
  PostgresTransactional,
  PostgresTransactionOf,
  PostgresUnitOfWorkOptions,
} from './postgres-unit-of-work.ts';
export { createPostgresUnitOfWork } from './postgres-unit-of-work.ts';
export type { PgListenClient, PostgresJsListen, PostgresWakeUpOptions } from './postgres-wake-up.ts';
export { createPostgresWakeUp } from './postgres-wake-up.ts';
export { migrate, schemaStatements } from './schema.ts';
