import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  createMysqlEventStore,
  createMysqlProjectionStore,
  createMysqlUnitOfWork,
  type MysqlTransaction,
  migrate,
} from '@cqrs-ts/mysql';
import { describeProjectionContract, type ProjectionHarness } from '@cqrs-ts/testing/contracts';
import { MYSQL_URL } from '../../core/test/support/services.ts';
import { mysqlCounters } from './projection-support.ts';
import { available, connect, type Flavor } from './support.ts';

const fixture = fileURLToPath(new URL('./fixtures/projection-child.ts', import.meta.url));

function harness(flavor: Flavor) {
  return async (): Promise<ProjectionHarness<MysqlTransaction> | undefined> => {
    if (!available) return undefined;
    const c = await connect(flavor, 'pj');
    const tables = { outbox: `pjo_${c.sfx}`, inbox: `pji_${c.sfx}`, projection: `pjp_${c.sfx}` };
    await migrate(c.client, { tables });
    const prefix = `pjc_${c.sfx}`;
    const counters = mysqlCounters(c.pool, prefix);
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
    const log = createMysqlEventStore({ client: c.client, tables, gapTimeoutMs: 200 });
    return {
      eventStore: () => log,
      projectionStore: () => createMysqlProjectionStore({ client: c.client, tables }),
      tx: c.tx,
      counters: {
        ...counters,
        async create(table) {
          created.add(`${prefix}_${table}`);
          await counters.create(table);
        },
      },
      unitOfWork: (store, projections) =>
        createMysqlUnitOfWork({ client: c.client, outbox: store.outbox, tables, projections }) as never,
      concurrentTransactions: true,
      spawnRunner: (args) =>
        spawn(process.execPath, ['--conditions=@cqrs-ts/source', fixture], {
          env: {
            ...process.env,
            CQRS_PROJECTION_CHILD: JSON.stringify({ ...args, url: MYSQL_URL, tables, prefix }),
          },
          stdio: ['ignore', 'pipe', 'inherit'],
        }),
      reset: () => c.truncate(...all),
      close: () => c.end(...all, ...created),
    };
  };
}

describeProjectionContract('mariadb (mysql2)', harness('mysql2'));
describeProjectionContract('mariadb (kysely)', harness('kysely'));
