/**
 * @cqrs-ts/postgres: transactional outbox, inbox and saga stores for PostgreSQL over pg, postgres.js or Kysely.
 * @module
 */
export { classifyPostgresError } from './postgres-errors.ts';
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
export { createPostgresSagaStore } from './postgres-saga-store.ts';
export type {
  PostgresTransactional,
  PostgresTransactionOf,
  PostgresUnitOfWorkOptions,
} from './postgres-unit-of-work.ts';
export { createPostgresUnitOfWork } from './postgres-unit-of-work.ts';
export type { PgListenClient, PostgresJsListen, PostgresWakeUpOptions } from './postgres-wake-up.ts';
export { createPostgresWakeUp } from './postgres-wake-up.ts';
export { migrate, schemaStatements } from './schema.ts';
