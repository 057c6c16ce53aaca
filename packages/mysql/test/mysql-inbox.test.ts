import { createMysqlInboxGuard, createMysqlInboxStore, type MysqlTransaction, migrate } from '@cqrs-ts/mysql';
import { describeInboxContract, type InboxHarness } from '@cqrs-ts/testing/contracts';
import { available, connect, FLAVORS, type Flavor } from './support.ts';

function harness(flavor: Flavor) {
  return async (): Promise<InboxHarness<MysqlTransaction> | undefined> => {
    if (!available) return undefined;
    const c = await connect(flavor, 'ib');
    const tables = { outbox: `ob_${c.sfx}`, inbox: `ib_${c.sfx}` };
    await migrate(c.client, { tables });
    return {
      inbox: createMysqlInboxStore({ client: c.client, tables }),
      tx: c.tx,
      recordEffect: c.recordEffect,
      effects: c.effects,
      guard: () => createMysqlInboxGuard({ client: c.client, tables }),
      guardWithoutTable: () =>
        createMysqlInboxGuard({ client: c.client, tables: { inbox: `missing_${c.sfx}` } }),
      reset: () => c.truncate(tables.outbox, tables.inbox),
      close: () => c.end(tables.outbox, tables.inbox),
    };
  };
}

for (const flavor of FLAVORS) describeInboxContract(`mariadb (${flavor})`, harness(flavor));
