import type { OutboxEncoderOptions } from '@cqrs-ts/core/spi';
import { createPostgresOutboxStore, migrate, type PostgresClient } from '@cqrs-ts/postgres';
import {
  describeOutboxStoreContract,
  type OutboxStoreHarness,
  rollbackVia,
} from '@cqrs-ts/testing/contracts';
import pg from 'pg';
import { PG_URL } from '../../core/test/support/services.ts';
import { toRecord } from '../src/postgres-outbox-store.ts';
import { available, connect, FLAVORS, type Flavor } from './support.ts';

function harness(flavor: Flavor) {
  return async (): Promise<OutboxStoreHarness<PostgresClient> | undefined> => {
    if (!available) return undefined;
    const c = await connect(flavor, 'ob');
    const { sfx, pool, sql, db, client, tx } = c;
    const tables = { outbox: `ob_${sfx}`, inbox: `ib_${sfx}` };
    await migrate(client, { tables });
    await migrate(client, { tables });
    return {
      store: (options?: OutboxEncoderOptions) => createPostgresOutboxStore({ client, tables, ...options }),
      tx,
      rollback: rollbackVia(tx),
      // postgres.js keeps running a finished transaction's queries in autocommit: not detectable, see README.
      withClosedTx: sql
        ? undefined
        : async (fn: (tx: PostgresClient) => Promise<void>) => {
            if (db) {
              let saved: PostgresClient | undefined;
              await db.transaction().execute(async (t) => {
                saved = t;
              });
              await fn(saved!);
            } else {
              const c = new pg.Client({ connectionString: PG_URL });
              await c.connect();
              await c.query('BEGIN');
              await c.query('COMMIT');
              await c.end();
              await fn(c);
            }
          },
      missingTableStore: () => createPostgresOutboxStore({ client, tables: { outbox: `missing_${sfx}` } }),
      async rows() {
        return (await pool.query(`SELECT * FROM ${tables.outbox} ORDER BY seq`)).rows.map(toRecord);
      },
      async appendUnreadable(events, damage) {
        const store = createPostgresOutboxStore({ client, tables });
        await tx((t) => store.append(t, events));
        const set = {
          headers: `headers = '"not an object"'::jsonb`,
          payload: `content_encoding = 'gzip', payload = '\\x010203'::bytea`,
          'content-encoding': `content_encoding = 'zstd'`,
        }[damage];
        await pool.query(`UPDATE ${tables.outbox} SET ${set} WHERE id = ANY($1::uuid[])`, [
          events.map((e) => e.metadata.requestId),
        ]);
      },
      reset: () => c.truncate(tables.outbox, tables.inbox),
      close: () => c.end(tables.outbox, tables.inbox),
    };
  };
}

for (const flavor of FLAVORS) describeOutboxStoreContract(`postgres (${flavor})`, harness(flavor));
