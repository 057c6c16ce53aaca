/**
 * @cqrs-ts/mysql: transactional outbox and inbox stores for MariaDB/MySQL over mysql2 or Kysely.
 * @module
 */
export { classifyMysqlError } from './mysql-errors.ts';
export { createMysqlInboxStore } from './mysql-inbox-store.ts';
export type {
  KyselyMysql,
  KyselyMysqlExecutor,
  Mysql2Pool,
  Mysql2Queryable,
  MysqlClient,
  MysqlInboxStoreOptions,
  MysqlOutboxStoreOptions,
  MysqlTables,
  MysqlTransaction,
} from './mysql-options.ts';
export { createMysqlOutboxStore } from './mysql-outbox-store.ts';
export { migrate, schemaStatements } from './schema.ts';
