import { createMediator, defineCommand, handle, isCqrsError, type UnitOfWork } from '@cqrs-ts/core';
import { IDEMPOTENCY_CONSUMER } from '@cqrs-ts/core/spi';
import {
  createPostgresOutboxStore,
  createPostgresUnitOfWork,
  migrate,
  type PostgresClient,
} from '@cqrs-ts/postgres';
import { describeUnitOfWorkContract, type UnitOfWorkHarness } from '@cqrs-ts/testing/contracts';
import { Kysely, PostgresDialect, type Transaction } from 'kysely';
import pg from 'pg';
import postgres, { type TransactionSql } from 'postgres';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { PG_URL, service, uniqueSuffix } from '../../core/test/support/services.ts';

const available = await service('postgres', async () => {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  await c.connect();
  await c.end();
});

interface Db {
  readonly items: { id: string };
}

type Flavor = 'pg' | 'postgres.js' | 'kysely';

function harness(flavor: Flavor) {
  return async (): Promise<(UnitOfWorkHarness<PostgresClient> & { pool: pg.Pool }) | undefined> => {
    if (!available) return undefined;
    const sfx = `uow_${flavor.replace(/\W/g, '')}_${uniqueSuffix}`;
    const tables = { outbox: `ob_${sfx}`, inbox: `ib_${sfx}` };
    const items = `it_${sfx}`;
    const pool = new pg.Pool({ connectionString: PG_URL, max: 8 });
    pool.on('error', () => {});
    const sql = flavor === 'postgres.js' ? postgres(PG_URL, { max: 8, onnotice: () => {} }) : undefined;
    const db = flavor === 'kysely' ? new Kysely<Db>({ dialect: new PostgresDialect({ pool }) }) : undefined;
    const client = sql ?? db ?? pool;
    await migrate(client as PostgresClient, { tables });
    await pool.query(`CREATE TABLE IF NOT EXISTS ${items} (id TEXT NOT NULL)`);
    const outbox = createPostgresOutboxStore({ client: client as PostgresClient, tables });
    return {
      pool,
      unitOfWork: (options) =>
        createPostgresUnitOfWork({
          client,
          outbox,
          tables,
          ...(options?.idempotency === false ? { idempotency: false } : {}),
        }) as UnitOfWork<PostgresClient>,
      async insertRow(tx, id) {
        if (sql)
          await (tx as unknown as TransactionSql).unsafe(`INSERT INTO ${items} (id) VALUES ($1)`, [id]);
        else if (db)
          await (tx as unknown as Transaction<Db>)
            .insertInto(items as 'items')
            .values({ id })
            .execute();
        else await (tx as pg.PoolClient).query(`INSERT INTO ${items} (id) VALUES ($1)`, [id]);
      },
      rows: async () =>
        (await pool.query(`SELECT id FROM ${items} ORDER BY id`)).rows.map((r) => r.id as string),
      outbox: async () =>
        (await pool.query(`SELECT id FROM ${tables.outbox} ORDER BY seq`)).rows.map((r) => r.id as string),
      idempotencyRecords: async () =>
        Number(
          (
            await pool.query(`SELECT count(*) AS n FROM ${tables.inbox} WHERE consumer = $1`, [
              IDEMPOTENCY_CONSUMER,
            ])
          ).rows[0].n,
        ),
      async reset() {
        await pool.query(`DELETE FROM ${items}; DELETE FROM ${tables.outbox}; DELETE FROM ${tables.inbox}`);
      },
      async close() {
        await pool.query(`DROP TABLE IF EXISTS ${items}, ${tables.outbox}, ${tables.inbox}`);
        await sql?.end();
        if (db) await db.destroy();
        else await pool.end();
      },
    };
  };
}

for (const flavor of ['pg', 'postgres.js', 'kysely'] as const) {
  describeUnitOfWorkContract(`postgres (${flavor})`, harness(flavor));
}

const Place = defineCommand('pg-uow.place').withPayload<{ id: string }>().returns<string>();

describe('postgres unit of work', () => {
  it('types the handler transaction after the client, with no casts', () => {
    const pool = new pg.Pool({ connectionString: PG_URL });
    const sql = postgres(PG_URL);
    const db = new Kysely<Db>({ dialect: new PostgresDialect({ pool }) });
    const outbox = createPostgresOutboxStore({ client: pool });
    const withPg = createPostgresUnitOfWork({ client: pool, outbox });
    const withJs = createPostgresUnitOfWork({ client: sql, outbox });
    const withKysely = createPostgresUnitOfWork({ client: db, outbox });
    expectTypeOf(withPg).toEqualTypeOf<UnitOfWork<pg.PoolClient>>();
    expectTypeOf(withJs).toEqualTypeOf<UnitOfWork<TransactionSql>>();
    expectTypeOf(withKysely).toEqualTypeOf<UnitOfWork<Transaction<Db>>>();
    handle(Place, async (cmd, ctx) => {
      const tx = withKysely.transaction(ctx);
      await tx.insertInto('items').values({ id: cmd.payload.id }).execute();
      // @ts-expect-error the table is not in the database type
      await tx.insertInto('orders').values({ id: cmd.payload.id }).execute();
      expectTypeOf(ctx.get(withPg.key)).toEqualTypeOf<pg.PoolClient | undefined>();
      return cmd.payload.id;
    });
    // @ts-expect-error a single Client cannot open transactions of its own
    expect(() => createPostgresUnitOfWork({ client: {} as pg.Client, outbox })).toThrow();
    // @ts-expect-error nor can a checked-out PoolClient
    expect(() => createPostgresUnitOfWork({ client: {} as pg.PoolClient, outbox })).toThrow();
    void sql.end();
    void pool.end();
  });

  it('refuses a client that cannot open transactions, and a missing outbox, at start-up', async () => {
    const client = new pg.Client({ connectionString: PG_URL });
    const outbox = createPostgresOutboxStore({ client });
    const bad: unknown[] = [
      { client, outbox },
      { client: undefined, outbox },
      { client: null, outbox },
      { client: new pg.Pool({ connectionString: PG_URL }) },
      { client: new pg.Pool({ connectionString: PG_URL }), outbox: {} },
      { client: new pg.Pool({ connectionString: PG_URL }), outbox, idempotency: 'yes' },
    ];
    for (const options of bad) {
      let error: unknown;
      try {
        createPostgresUnitOfWork(options as never);
      } catch (e) {
        error = e;
      }
      expect(isCqrsError(error, 'CQRS_CONFIGURATION'), JSON.stringify(Object.keys(options as object))).toBe(
        true,
      );
    }
  });

  it.skipIf(!available)(
    'adds the idempotency columns to an inbox table made by an older version',
    async () => {
      const pool = new pg.Pool({ connectionString: PG_URL });
      const sfx = `old_${uniqueSuffix}`;
      const tables = { outbox: `ob_${sfx}`, inbox: `ib_${sfx}`, saga: `sg_${sfx}`, sagaLog: `sl_${sfx}` };
      try {
        await pool.query(
          `CREATE TABLE ${tables.inbox} (message_id TEXT NOT NULL, consumer TEXT NOT NULL, processed_at BIGINT NOT NULL, PRIMARY KEY (message_id, consumer))`,
        );
        await migrate(pool, { tables });
        await migrate(pool, { tables });
        const { rows } = await pool.query(
          'SELECT column_name FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position',
          [tables.inbox],
        );
        expect(rows.map((r) => r.column_name)).toEqual([
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

  it.skipIf(!available)(
    'on a pg pool, a first keyed send takes the round trips of the same send without a key, a replay two',
    async () => {
      const h = (await harness('pg')())!;
      const uow = h.unitOfWork();
      const mediator = createMediator({
        behaviors: [uow],
        handlers: [
          handle(Place, async (cmd, ctx) => {
            await h.insertRow(uow.transaction(ctx), cmd.payload.id);
            return `placed ${cmd.payload.id}`;
          }),
        ],
      });
      const sent: string[] = [];
      const counted = new WeakSet<object>();
      h.pool.on('acquire', (client) => {
        if (counted.has(client)) return;
        counted.add(client);
        const query = client.query.bind(client) as (...args: unknown[]) => unknown;
        (client as unknown as { query: unknown }).query = (...args: unknown[]) => {
          const q = args[0] as string | { text: string };
          sent.push(typeof q === 'string' ? q : q.text);
          return query(...args);
        };
      });
      const roundTrips = async (send: () => Promise<unknown>) => {
        sent.length = 0;
        await send();
        return sent.length;
      };
      try {
        const plain = await roundTrips(() => mediator.send(Place.create({ id: 'a' })));
        expect(plain).toBe(3); // BEGIN, the row, COMMIT
        expect(
          await roundTrips(() => mediator.send(Place.create({ id: 'b' }, { idempotencyKey: 'k' }))),
        ).toBe(plain);
        expect(
          await roundTrips(() => mediator.send(Place.create({ id: 'b' }, { idempotencyKey: 'k' }))),
        ).toBe(2);
        expect(await h.rows()).toEqual(['a', 'b']);
        expect(await h.idempotencyRecords()).toBe(1);
      } finally {
        await h.close();
      }
    },
  );

  it.skipIf(!available)('turns a failed BEGIN into a StorageError and runs nothing', async () => {
    const pool = new pg.Pool({
      connectionString: 'postgres://postgres@127.0.0.1:1/none',
      connectionTimeoutMillis: 500,
    });
    pool.on('error', () => {});
    let ran = false;
    const uow = createPostgresUnitOfWork({
      client: pool,
      outbox: createPostgresOutboxStore({ client: pool }),
    });
    const mediator = createMediator({
      behaviors: [uow],
      handlers: [
        handle(Place, (cmd) => {
          ran = true;
          return cmd.payload.id;
        }),
      ],
    });
    const error = await mediator.send(Place.create({ id: 'a' })).catch((e: unknown) => e);
    expect(isCqrsError(error, 'CQRS_STORAGE')).toBe(true);
    expect(error).toMatchObject({ reason: 'connection' });
    expect(ran).toBe(false);
    await pool.end();
  });

  it.skipIf(!available)(
    'a connection that drops while a handler holds it (a server restart, a killed backend) fails the command, not the process',
    async () => {
      const sfx = `uow_drop_${uniqueSuffix}`;
      const tables = { outbox: `ob_${sfx}`, inbox: `ib_${sfx}` };
      const pool = new pg.Pool({ connectionString: PG_URL, max: 4 });
      pool.on('error', () => {});
      await migrate(pool, { tables });
      const uow = createPostgresUnitOfWork({
        client: pool,
        outbox: createPostgresOutboxStore({ client: pool, tables }),
      });
      const mediator = createMediator({
        behaviors: [uow],
        handlers: [
          handle(Place, async (cmd, ctx) => {
            const tx = uow.transaction(ctx) as pg.PoolClient;
            if (cmd.payload.id !== 'a') return cmd.payload.id;
            const { rows } = await tx.query('SELECT pg_backend_pid() AS pid');
            // pg hands out a checked-out client with no 'error' listener: when its connection drops between two
            // queries, pg emits 'error' on it, which ends the process unless the unit of work listens.
            const dropped = new Promise<void>((resolve) => tx.once('end', () => resolve()));
            await pool.query('SELECT pg_terminate_backend($1)', [rows[0].pid]);
            await dropped;
            return cmd.payload.id;
          }),
        ],
      });
      try {
        const error = await mediator.send(Place.create({ id: 'a' })).catch((e: unknown) => e);
        expect(isCqrsError(error, 'CQRS_STORAGE')).toBe(true);
        expect(await mediator.send(Place.create({ id: 'b' }))).toBe('b'); // the pool replaced the connection
      } finally {
        await pool.query(`DROP TABLE IF EXISTS ${tables.outbox}, ${tables.inbox}`);
        await pool.end();
      }
    },
  );
});
