import type { OutboxEncoderOptions } from '@cqrs-ts/core/spi';
import { createMysqlOutboxStore, type MysqlTransaction, migrate } from '@cqrs-ts/mysql';
import {
  describeOutboxStoreContract,
  type OutboxStoreHarness,
  rollbackVia,
} from '@cqrs-ts/testing/contracts';
import mysql from 'mysql2/promise';
import { MYSQL_URL } from '../../core/test/support/services.ts';
import { toRecord } from '../src/mysql-outbox-store.ts';
import { available, connect, FLAVORS, type Flavor } from './support.ts';

function harness(flavor: Flavor) {
  return async (): Promise<OutboxStoreHarness<MysqlTransaction> | undefined> => {
    if (!available) return undefined;
    const c = await connect(flavor, 'ob');
    const { sfx, pool, db, client, tx } = c;
    const tables = { outbox: `ob_${sfx}`, inbox: `ib_${sfx}` };
    await migrate(client, { tables });
    await migrate(client, { tables });
    return {
      store: (options?: OutboxEncoderOptions) => createMysqlOutboxStore({ client, tables, ...options }),
      tx,
      rollback: rollbackVia(tx),
      withClosedTx: db
        ? undefined
        : async (fn) => {
            const conn = await mysql.createConnection({ uri: MYSQL_URL });
            await conn.beginTransaction();
            await conn.commit();
            await conn.end();
            await fn(conn);
          },
      missingTableStore: () => createMysqlOutboxStore({ client, tables: { outbox: `missing_${sfx}` } }),
      async rows() {
        const [rows] = await pool.query(`SELECT * FROM ${tables.outbox} ORDER BY seq`);
        return (rows as Record<string, unknown>[]).map(toRecord);
      },
      async appendUnreadable(events, damage) {
        const store = createMysqlOutboxStore({ client, tables });
        await tx((t) => store.append(t, events));
        const set = {
          headers: `headers = '{"id": '`,
          payload: `content_encoding = 'gzip', payload = x'010203'`,
          'content-encoding': `content_encoding = 'zstd'`,
        }[damage];
        await pool.query(`UPDATE ${tables.outbox} SET ${set} WHERE id IN (?)`, [
          events.map((e) => e.metadata.requestId),
        ]);
      },
      reset: () => c.truncate(tables.outbox, tables.inbox),
      close: () => c.end(tables.outbox, tables.inbox),
    };
  };
}

for (const flavor of FLAVORS) describeOutboxStoreContract(`mariadb (${flavor})`, harness(flavor));
