import { type AnyEvent, defineEvent } from '@cqrs-ts/core';
import type { OutboxEncoderOptions } from '@cqrs-ts/core/spi';
import { createMysqlOutboxStore, type MysqlTransaction, migrate } from '@cqrs-ts/mysql';
import {
  describeOutboxStoreContract,
  type OutboxStoreHarness,
  rollbackVia,
} from '@cqrs-ts/testing/contracts';
import mysql from 'mysql2/promise';
import { describe, expect, it } from 'vitest';
import { MYSQL_URL } from '../../core/test/support/services.ts';
import { toRecord } from '../src/mysql-outbox-store.ts';
import { available, connect, FLAVORS, type Flavor } from './support.ts';

const Noted = defineEvent('test.deadlock-noted').withPayload<{ n: number }>();

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

describe.skipIf(!available)('mariadb outbox claim and InnoDB deadlocks', () => {
  it('claims again when InnoDB picked its claim as a deadlock victim (it rolled back whole: nothing was claimed)', async () => {
    const c = await connect('mysql2', 'obdl');
    const tables = { outbox: `obdl_${c.sfx}`, inbox: `ibdl_${c.sfx}` };
    await migrate(c.client, { tables });
    const pool = c.pool as mysql.Pool;
    let deadlocks = 1;
    // The server's answer to a claim it chose as the victim, once (two relays' claims deadlock on MariaDB's gap locks).
    const victim = new Proxy(pool, {
      get(target, name, receiver) {
        if (name !== 'getConnection') return Reflect.get(target, name, receiver);
        return async () => {
          const conn = await target.getConnection();
          return new Proxy(conn, {
            get(t, n, r) {
              if (n !== 'query') return Reflect.get(t, n, r);
              return (sql: unknown, ...rest: unknown[]) => {
                if (typeof sql === 'string' && /SKIP LOCKED/.test(sql) && deadlocks-- > 0) {
                  return Promise.reject(
                    Object.assign(
                      new Error('Deadlock found when trying to get lock; try restarting transaction'),
                      {
                        code: 'ER_LOCK_DEADLOCK',
                        errno: 1213,
                      },
                    ),
                  );
                }
                return (t.query as (...a: unknown[]) => unknown).call(t, sql, ...rest);
              };
            },
          });
        };
      },
    });
    try {
      const store = createMysqlOutboxStore({ client: victim, tables });
      await c.tx((tx) => store.append(tx, [Noted.create({ n: 1 }) as AnyEvent]));
      const claimed = await store.claimBatch({ relayId: 'r', limit: 10, leaseMs: 10_000, now: Date.now() });
      expect(deadlocks).toBe(-1); // the deadlock happened, then the second claim ran
      expect(claimed.map((r) => r.claimedBy)).toEqual(['r']);
    } finally {
      await c.end(tables.outbox, tables.inbox);
    }
  });
});
