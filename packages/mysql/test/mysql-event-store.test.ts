import {
  createMysqlEventStore,
  createMysqlStateRepository,
  createMysqlUnitOfWork,
  type MysqlTransaction,
  migrate,
} from '@cqrs-ts/mysql';
import {
  CONTRACT_ACCOUNT_COLUMNS,
  type ContractAccount,
  describeEventStoreContract,
  describeStateRepositoryContract,
  type EventStoreHarness,
  rollbackVia,
  type StateRepositoryHarness,
} from '@cqrs-ts/testing/contracts';
import { available, connect, FLAVORS, type Flavor } from './support.ts';

function eventStoreHarness(flavor: Flavor) {
  return async (): Promise<EventStoreHarness<MysqlTransaction> | undefined> => {
    if (!available) return undefined;
    const c = await connect(flavor, 'es');
    const tables = { outbox: `es_${c.sfx}`, inbox: `esi_${c.sfx}` };
    await migrate(c.client, { tables });
    await migrate(c.client, { tables });
    const all = [tables.outbox, `${tables.outbox}_archive`, `${tables.outbox}_stream`, tables.inbox];
    return {
      store: (options) =>
        createMysqlEventStore({
          client: c.client,
          tables,
          archive: options?.archive ?? false,
          gapTimeoutMs: 200,
        }),
      tx: c.tx,
      rollback: rollbackVia(c.tx),
      concurrentTransactions: true,
      unitOfWork: (store) =>
        createMysqlUnitOfWork({ client: c.client, outbox: store.outbox, tables }) as never,
      reset: () => c.truncate(...all),
      close: () => c.end(...all),
    };
  };
}

/** mysql2 maps the state to columns of its own; Kysely keeps it as JSON text. */
function stateHarness(flavor: Flavor) {
  return async (): Promise<StateRepositoryHarness<MysqlTransaction> | undefined> => {
    if (!available) return undefined;
    const c = await connect(flavor, 'st');
    const table = `acct_${c.sfx}`;
    const columns =
      flavor === 'mysql2'
        ? 'owner VARCHAR(64) NOT NULL, balance DECIMAL(12, 2) NOT NULL, tags JSON NOT NULL'
        : 'state LONGTEXT NOT NULL';
    await c.pool.query(
      `CREATE TABLE ${table} (id VARCHAR(255) COLLATE utf8mb4_bin PRIMARY KEY, version BIGINT NOT NULL, ${columns}) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    );
    const repository =
      flavor === 'mysql2'
        ? createMysqlStateRepository<ContractAccount>({ name: 'account', table, ...CONTRACT_ACCOUNT_COLUMNS })
        : createMysqlStateRepository<ContractAccount>({ name: 'account', table });
    return {
      repository: () => repository,
      tx: c.tx,
      rollback: rollbackVia(c.tx),
      reset: () => c.truncate(table),
      close: () => c.end(table),
    };
  };
}

for (const flavor of FLAVORS) {
  describeEventStoreContract(`mariadb (${flavor})`, eventStoreHarness(flavor));
  describeStateRepositoryContract(`mariadb (${flavor})`, stateHarness(flavor));
}
