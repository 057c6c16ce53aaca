import {
  createPostgresEventStore,
  createPostgresStateRepository,
  createPostgresUnitOfWork,
  migrate,
  type PostgresClient,
} from '@cqrs-ts/postgres';
import type { ContractAccount } from '@cqrs-ts/testing/contracts';
import {
  CONTRACT_ACCOUNT_COLUMNS,
  describeEventStoreContract,
  describeStateRepositoryContract,
  type EventStoreHarness,
  rollbackVia,
  type StateRepositoryHarness,
} from '@cqrs-ts/testing/contracts';
import { available, connect, FLAVORS, type Flavor } from './support.ts';

function eventStoreHarness(flavor: Flavor) {
  return async (): Promise<EventStoreHarness<PostgresClient> | undefined> => {
    if (!available) return undefined;
    const c = await connect(flavor, 'es');
    const tables = { outbox: `es_${c.sfx}`, inbox: `esi_${c.sfx}` };
    await migrate(c.client, { tables });
    await migrate(c.client, { tables });
    const all = [tables.outbox, `${tables.outbox}_archive`, `${tables.outbox}_stream`, tables.inbox];
    return {
      store: (options) =>
        createPostgresEventStore({ client: c.client, tables, archive: options?.archive ?? false }),
      tx: c.tx,
      rollback: rollbackVia(c.tx),
      concurrentTransactions: true,
      unitOfWork: (store) =>
        createPostgresUnitOfWork({ client: c.transactional, outbox: store.outbox, tables }) as never,
      reset: () => c.truncate(...all),
      close: () => c.end(...all),
    };
  };
}

/** pg maps the state to columns of its own; postgres.js keeps it as JSON text, Kysely as JSONB. */
function stateHarness(flavor: Flavor) {
  return async (): Promise<StateRepositoryHarness<PostgresClient> | undefined> => {
    if (!available) return undefined;
    const c = await connect(flavor, 'st');
    const table = `acct_${c.sfx}`;
    const columns =
      flavor === 'pg'
        ? 'owner TEXT NOT NULL, balance NUMERIC NOT NULL, tags JSONB NOT NULL'
        : `state ${flavor === 'kysely' ? 'JSONB' : 'TEXT'} NOT NULL`;
    await c.pool.query(`CREATE TABLE ${table} (id TEXT PRIMARY KEY, version BIGINT NOT NULL, ${columns})`);
    const repository =
      flavor === 'pg'
        ? createPostgresStateRepository<ContractAccount>({
            name: 'account',
            table,
            ...CONTRACT_ACCOUNT_COLUMNS,
          })
        : createPostgresStateRepository<ContractAccount>({ name: 'account', table });
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
  describeEventStoreContract(`postgres (${flavor})`, eventStoreHarness(flavor));
  describeStateRepositoryContract(`postgres (${flavor})`, stateHarness(flavor));
}
