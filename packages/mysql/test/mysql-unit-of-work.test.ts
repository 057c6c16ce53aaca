import { createMediator, defineCommand, handle, isCqrsError, type UnitOfWork } from '@cqrs-ts/core';
import { IDEMPOTENCY_CONSUMER } from '@cqrs-ts/core/spi';
import {
  createMysqlOutboxStore,
  createMysqlUnitOfWork,
  type MysqlClient,
  type MysqlTransaction,
  migrate,
} from '@cqrs-ts/mysql';
import { describeUnitOfWorkContract, type UnitOfWorkHarness } from '@cqrs-ts/testing/contracts';
import { Kysely, MysqlDialect, type Transaction } from 'kysely';
import { createPool as createCallbackPool } from 'mysql2';
import mysql from 'mysql2/promise';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { MYSQL_URL, service, uniqueSuffix } from '../../core/test/support/services.ts';

const available = await service('mariadb', async () => {
  const c = await mysql.createConnection({ uri: MYSQL_URL, connectTimeout: 2000 });
  await c.end();
});

interface Db {
  readonly items: { id: string };
}

function harness(flavor: 'mysql2' | 'kysely') {
  return async (): Promise<(UnitOfWorkHarness<MysqlTransaction> & { pool: mysql.Pool }) | undefined> => {
    if (!available) return undefined;
    const sfx = `uow_${flavor}_${uniqueSuffix}`;
    const tables = { outbox: `ob_${sfx}`, inbox: `ib_${sfx}` };
    const items = `it_${sfx}`;
    const pool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 8 });
    const db =
      flavor === 'kysely'
        ? new Kysely<Db>({
            dialect: new MysqlDialect({ pool: createCallbackPool({ uri: MYSQL_URL, connectionLimit: 8 }) }),
          })
        : undefined;
    const client = db ?? pool;
    await migrate(client as MysqlClient, { tables });
    await pool.query(`CREATE TABLE IF NOT EXISTS ${items} (id VARCHAR(64) NOT NULL)`);
    const outbox = createMysqlOutboxStore({ client: client as MysqlClient, tables });
    return {
      pool,
      unitOfWork: (options) =>
        createMysqlUnitOfWork({
          client,
          outbox,
          tables,
          ...(options?.idempotency === false ? { idempotency: false } : {}),
        }) as UnitOfWork<MysqlTransaction>,
      async insertRow(tx, id) {
        if (db)
          await (tx as unknown as Transaction<Db>)
            .insertInto(items as 'items')
            .values({ id })
            .execute();
        else await (tx as mysql.PoolConnection).query(`INSERT INTO ${items} (id) VALUES (?)`, [id]);
      },
      rows: async () =>
        ((await pool.query(`SELECT id FROM ${items} ORDER BY id`))[0] as { id: string }[]).map((r) => r.id),
      outbox: async () =>
        ((await pool.query(`SELECT id FROM ${tables.outbox} ORDER BY seq`))[0] as { id: string }[]).map(
          (r) => r.id,
        ),
      idempotencyRecords: async () =>
        Number(
          (
            (
              await pool.query(`SELECT count(*) AS n FROM ${tables.inbox} WHERE consumer = ?`, [
                IDEMPOTENCY_CONSUMER,
              ])
            )[0] as {
              n: number;
            }[]
          )[0]!.n,
        ),
      async reset() {
        for (const t of [items, tables.outbox, tables.inbox]) await pool.query(`DELETE FROM ${t}`);
      },
      async close() {
        await pool.query(`DROP TABLE IF EXISTS ${items}, ${tables.outbox}, ${tables.inbox}`);
        await db?.destroy();
        await pool.end();
      },
    };
  };
}

for (const flavor of ['mysql2', 'kysely'] as const) {
  describeUnitOfWorkContract(`mariadb (${flavor})`, harness(flavor));
}

describe('mysql unit of work', () => {
  it('types the handler transaction after the client, with no casts', async () => {
    const pool = mysql.createPool({ uri: MYSQL_URL });
    const db = new Kysely<Db>({
      dialect: new MysqlDialect({ pool: createCallbackPool({ uri: MYSQL_URL }) }),
    });
    const outbox = createMysqlOutboxStore({ client: pool });
    expectTypeOf(createMysqlUnitOfWork({ client: pool, outbox })).toEqualTypeOf<
      UnitOfWork<mysql.PoolConnection>
    >();
    expectTypeOf(createMysqlUnitOfWork({ client: db, outbox })).toEqualTypeOf<UnitOfWork<Transaction<Db>>>();
    await db.destroy();
    await pool.end();
  });

  it('refuses a client that cannot open transactions, and a missing outbox, at start-up', async () => {
    const pool = mysql.createPool({ uri: MYSQL_URL });
    const outbox = createMysqlOutboxStore({ client: pool });
    const connection = { query: async () => [[], []], release() {}, getConnection: async () => ({}) };
    for (const options of [
      { client: connection, outbox },
      { client: { query: async () => [[], []] }, outbox },
      { client: { executeQuery: async () => ({ rows: [] }) }, outbox },
      { client: undefined, outbox },
      { client: pool },
      { client: pool, outbox: { append: 1 } },
    ]) {
      let error: unknown;
      try {
        createMysqlUnitOfWork(options as never);
      } catch (e) {
        error = e;
      }
      expect(isCqrsError(error, 'CQRS_CONFIGURATION')).toBe(true);
    }
    await pool.end();
  });

  const Place = defineCommand('mysql-uow.place').withPayload<{ id: string }>().returns<string>();

  /** A mediator whose Place handler inserts a row with the unit's transaction; counts the handler's runs. */
  const placing = (h: UnitOfWorkHarness<MysqlTransaction>, calls = { n: 0 }) => {
    const uow = h.unitOfWork();
    return createMediator({
      behaviors: [uow],
      handlers: [
        handle(Place, async (cmd, ctx) => {
          calls.n++;
          await h.insertRow(uow.transaction(ctx), cmd.payload.id);
          return `placed ${cmd.payload.id}`;
        }),
      ],
    });
  };

  /**
   * The SQL texts sent on the pool's connections from now on, each one round trip; `rewrite` changes a text
   * before it goes to the server.
   */
  const watchQueries = (pool: mysql.Pool, rewrite = (sql: string) => sql): string[] => {
    const sent: string[] = [];
    const watched = new WeakSet<object>();
    pool.pool.on('acquire', (connection) => {
      if (watched.has(connection)) return;
      watched.add(connection);
      const query = connection.query.bind(connection) as (...args: unknown[]) => unknown;
      (connection as unknown as { query: unknown }).query = (sql: unknown, ...rest: unknown[]) => {
        if (typeof sql !== 'string') return query(sql, ...rest);
        sent.push(sql);
        return query(rewrite(sql), ...rest);
      };
    });
    return sent;
  };

  it.skipIf(!available)(
    'on a mysql2 pool, a first keyed send takes the round trips of the same send without a key, a replay one',
    async () => {
      const h = (await harness('mysql2')())!;
      const mediator = placing(h);
      const sent = watchQueries(h.pool);
      const roundTrips = async (send: () => Promise<unknown>) => {
        sent.length = 0;
        await send();
        return sent.length;
      };
      try {
        const plain = await roundTrips(() => mediator.send(Place.create({ id: 'a' })));
        expect(plain).toBe(3); // START TRANSACTION, the row, COMMIT
        expect(
          await roundTrips(() => mediator.send(Place.create({ id: 'b' }, { idempotencyKey: 'k' }))),
        ).toBe(plain);
        expect(
          await roundTrips(() => mediator.send(Place.create({ id: 'b' }, { idempotencyKey: 'k' }))),
        ).toBe(1);
        expect(await h.rows()).toEqual(['a', 'b']);
        expect(await h.idempotencyRecords()).toBe(1);
      } finally {
        await h.close();
      }
    },
  );

  it.skipIf(!available)(
    'on a server without compound statements (MySQL), keyed commands start, claim and commit in statements of their own',
    async () => {
      const h = (await harness('mysql2')())!;
      const calls = { n: 0 };
      const mediator = placing(h, calls);
      // MySQL has no anonymous blocks: the server answers a syntax error (1064), as MySQL does.
      const sent = watchQueries(h.pool, (sql) => sql.replace(/^BEGIN NOT ATOMIC/, 'BEGIN_NOT_ATOMIC'));
      try {
        expect(await mediator.send(Place.create({ id: 'a' }, { idempotencyKey: 'k-a' }))).toBe('placed a');
        sent.length = 0;
        expect(await mediator.send(Place.create({ id: 'b' }, { idempotencyKey: 'k-b' }))).toBe('placed b');
        expect(sent.filter((q) => q.startsWith('BEGIN NOT ATOMIC'))).toEqual([]);
        expect(await mediator.send(Place.create({ id: 'a' }, { idempotencyKey: 'k-a' }))).toBe('placed a');
        expect(calls.n).toBe(2);
        expect(await h.rows()).toEqual(['a', 'b']);
        expect(await h.idempotencyRecords()).toBe(2);
      } finally {
        await h.close();
      }
    },
  );

  it.skipIf(!available)(
    'adds the idempotency columns to an inbox table made by an older version',
    async () => {
      const pool = mysql.createPool({ uri: MYSQL_URL });
      const inbox = `ib_old_${uniqueSuffix}`;
      const tables = {
        outbox: `ob_old_${uniqueSuffix}`,
        inbox,
        saga: `sg_old_${uniqueSuffix}`,
        sagaLog: `sl_old_${uniqueSuffix}`,
      };
      try {
        await pool.query(
          `CREATE TABLE ${inbox} (message_id VARCHAR(255) NOT NULL, consumer VARCHAR(255) NOT NULL, processed_at BIGINT NOT NULL, PRIMARY KEY (message_id, consumer))`,
        );
        await migrate(pool, { tables });
        await migrate(pool, { tables });
        const [cols] = await pool.query(`SHOW COLUMNS FROM ${inbox}`);
        expect((cols as { Field: string }[]).map((c) => c.Field)).toEqual([
          'message_id',
          'consumer',
          'processed_at',
          'fingerprint',
          'result',
          'source',
        ]);
      } finally {
        await pool.query(`DROP TABLE IF EXISTS ${Object.values(tables).join(', ')}`);
        await pool.end();
      }
    },
  );
});
