import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  createPostgresEventStore,
  createPostgresProjectionStore,
  createPostgresUnitOfWork,
  migrate,
  type PostgresClient,
} from '@cqrs-ts/postgres';
import { describeProjectionContract, type ProjectionHarness } from '@cqrs-ts/testing/contracts';
import { PG_URL } from '../../core/test/support/services.ts';
import { pgCounters } from './projection-support.ts';
import { available, connect, type Flavor } from './support.ts';

const fixture = fileURLToPath(new URL('./fixtures/projection-child.ts', import.meta.url));

function harness(flavor: Flavor) {
  return async (): Promise<ProjectionHarness<PostgresClient> | undefined> => {
    if (!available) return undefined;
    const c = await connect(flavor, 'pj');
    const tables = { outbox: `pjo_${c.sfx}`, inbox: `pji_${c.sfx}`, projection: `pjp_${c.sfx}` };
    await migrate(c.client, { tables });
    const prefix = `pjc_${c.sfx}`;
    const counters = pgCounters(c.pool, prefix);
    const created = new Set<string>();
    const all = [
      tables.outbox,
      `${tables.outbox}_archive`,
      `${tables.outbox}_stream`,
      tables.inbox,
      tables.projection,
      `${tables.projection}_doc`,
      `${tables.projection}_parked`,
    ];
    const log = createPostgresEventStore({ client: c.client, tables });
    return {
      eventStore: () => log,
      projectionStore: () => createPostgresProjectionStore({ client: c.transactional, tables }),
      tx: c.tx,
      counters: {
        ...counters,
        async create(table) {
          created.add(`${prefix}_${table}`);
          await counters.create(table);
        },
      },
      unitOfWork: (store, projections) =>
        createPostgresUnitOfWork({
          client: c.transactional,
          outbox: store.outbox,
          tables,
          projections,
        }) as never,
      concurrentTransactions: true,
      spawnRunner: (args) =>
        spawn(process.execPath, ['--conditions=@cqrs-ts/source', fixture], {
          env: {
            ...process.env,
            CQRS_PROJECTION_CHILD: JSON.stringify({ ...args, url: PG_URL, tables, prefix }),
          },
          stdio: ['ignore', 'pipe', 'inherit'],
        }),
      reset: () => c.truncate(...all),
      close: () => c.end(...all, ...created),
    };
  };
}

describeProjectionContract('postgres (pg)', harness('pg'));
describeProjectionContract('postgres (postgres.js)', harness('postgres.js'));
