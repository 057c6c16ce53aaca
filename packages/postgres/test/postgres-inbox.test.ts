import {
  createPostgresInboxGuard,
  createPostgresInboxStore,
  migrate,
  type PostgresClient,
} from '@cqrs-ts/postgres';
import { describeInboxContract, type InboxHarness } from '@cqrs-ts/testing/contracts';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { PG_URL } from '../../core/test/support/services.ts';
import { available, connect, FLAVORS, type Flavor } from './support.ts';

function harness(flavor: Flavor) {
  return async (): Promise<InboxHarness<PostgresClient> | undefined> => {
    if (!available) return undefined;
    const c = await connect(flavor, 'ib');
    const tables = { outbox: `ob_${c.sfx}`, inbox: `ib_${c.sfx}` };
    await migrate(c.client, { tables });
    return {
      inbox: createPostgresInboxStore({ client: c.client, tables }),
      tx: c.tx,
      recordEffect: c.recordEffect,
      effects: c.effects,
      guard: () => createPostgresInboxGuard({ client: c.transactional, tables }),
      guardWithoutTable: () =>
        createPostgresInboxGuard({ client: c.transactional, tables: { inbox: `missing_${c.sfx}` } }),
      reset: () => c.truncate(tables.outbox, tables.inbox),
      close: () => c.end(tables.outbox, tables.inbox),
    };
  };
}

for (const flavor of FLAVORS) describeInboxContract(`postgres (${flavor})`, harness(flavor));

describe.skipIf(!available)('postgres inbox guard', () => {
  it('refuses a client that cannot open transactions of its own', () => {
    const single = new pg.Client({ connectionString: PG_URL });
    expect(() => createPostgresInboxGuard({ client: single as never })).toThrow(/pg Pool/);
  });
});
