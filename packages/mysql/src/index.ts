/**
 * @cqrs-ts/mysql: transactional outbox, inbox and saga stores, the event log with streams, and state-based
 * aggregate repositories for MariaDB/MySQL over mysql2 or Kysely.
 * @module
 */
export { classifyMysqlError } from './mysql-errors.ts';
export type { MysqlEventStore, MysqlEventStoreOptions } from './mysql-event-store.ts';
export { createMysqlEventStore } from './mysql-event-store.ts';
export type { MysqlIdempotencyStoreOptions } from './mysql-idempotency-store.ts';
export { createMysqlIdempotencyStore } from './mysql-idempotency-store.ts';
export type { MysqlInboxGuardOptions } from './mysql-inbox-guard.ts';
export { createMysqlInboxGuard } from './mysql-inbox-guard.ts';
export { createMysqlInboxStore } from './mysql-inbox-store.ts';
export type {
  KyselyMysql,
  KyselyMysqlExecutor,
  Mysql2Pool,
  Mysql2Queryable,
  MysqlClient,
  MysqlInboxStoreOptions,
  MysqlOutboxStoreOptions,
  MysqlSagaStoreOptions,
  MysqlTables,
  MysqlTransaction,
} from './mysql-options.ts';
export { createMysqlOutboxStore } from './mysql-outbox-store.ts';
export type { MysqlProjectionStoreOptions } from './mysql-projection-store.ts';
export { createMysqlProjectionStore } from './mysql-projection-store.ts';
export { createMysqlSagaStore } from './mysql-saga-store.ts';
export type { MysqlStateRepositoryOptions } from './mysql-state-repository.ts';
export { createMysqlStateRepository } from './mysql-state-repository.ts';
export type { MysqlTransactionOf, MysqlUnitOfWorkOptions } from './mysql-unit-of-work.ts';
export { createMysqlUnitOfWork } from './mysql-unit-of-work.ts';
export { migrate, schemaStatements } from './schema.ts';
