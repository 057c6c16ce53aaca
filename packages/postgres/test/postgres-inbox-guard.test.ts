import { consumerTransaction, createMessageProcessor, defineEvent } from '@cqrs-ts/core';
import { eventAttributes } from '@cqrs-ts/core/spi';
import { createPostgresInboxGuard, migrate, type PostgresClient } from '@cqrs-ts/postgres';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, describe, expect, it } from 'vitest';
import { PG_URL, service, uniqueSuffix } from '../../core/test/support/services.ts';

const available = await service('postgres', async () => {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  await c.connect();
  await c.end();
});

const Shipped = defineEvent('guard.shipped').withPayload<{ id: string }>();
const utf8 = new TextEncoder();

describe.skipIf(!available)('postgres inbox guard', () => {
  const pool = new pg.Pool({ connectionString: PG_URL, max: 4 });
  pool.on('error', () => {});
  const sql = postgres(PG_URL, { max: 2, onnotice: () => {} });
  const db = new Kysely<never>({
    dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: PG_URL, max: 2 }) }),
  });
  afterAll(async () => {
    await pool.end();
    await sql.end();
    await db.destroy();
  });

  const flavors = { pg: pool, 'postgres.js': sql, kysely: db } as const;
  for (const [flavor, client] of Object.entries(flavors)) {
    it(`${flavor}: effects and mark commit together; a duplicate or a rollback leaves one effect`, async () => {
      const sfx = `${flavor.replace(/\W/g, '')}_${uniqueSuffix}`;
      const tables = { outbox: `gob_${sfx}`, inbox: `gib_${sfx}` };
      const fx = `gfx_${sfx}`;
      await migrate(pool, { tables });
      await pool.query(`CREATE TABLE ${fx} (id TEXT NOT NULL)`);
      try {
        const guard = createPostgresInboxGuard({ client, tables });
        const insert = async (tx: PostgresClient) => {
          const t = tx as { query?: unknown; unsafe?: unknown; executeQuery?: unknown };
          if (typeof t.unsafe === 'function')
            await (tx as postgres.Sql).unsafe(`INSERT INTO ${fx} VALUES ('a')`);
          else if (typeof t.query === 'function')
            await (tx as pg.PoolClient).query(`INSERT INTO ${fx} VALUES ('a')`);
          else {
            const { sql: ksql } = await import('kysely');
            await ksql.raw(`INSERT INTO ${fx} VALUES ('a')`).execute(tx as unknown as Kysely<never>);
          }
        };
        await expect(
          guard.once('m1', 'c', async (tx) => {
            await insert(tx);
            throw new Error('handler failed');
          }),
        ).rejects.toThrow('handler failed');
        expect((await pool.query(`SELECT count(*)::int AS n FROM ${fx}`)).rows[0].n).toBe(0);
        expect(await guard.once('m1', 'c', insert)).toBe(true);
        expect(await guard.once('m1', 'c', insert)).toBe(false);
        expect(await guard.once('m1', 'other-consumer', insert)).toBe(true);
        expect((await pool.query(`SELECT count(*)::int AS n FROM ${fx}`)).rows[0].n).toBe(2);
      } finally {
        await pool.query(`DROP TABLE IF EXISTS ${tables.outbox}, ${tables.inbox}, ${fx}`);
      }
    });
  }

  it('refuses a client that cannot open transactions of its own', () => {
    const single = new pg.Client({ connectionString: PG_URL });
    expect(() => createPostgresInboxGuard({ client: single as never })).toThrow(/pg Pool/);
  });

  it('a message processor with the guard gives handlers the transaction and acks duplicates', async () => {
    const tables = { outbox: `gpob_${uniqueSuffix}`, inbox: `gpib_${uniqueSuffix}` };
    const fx = `gpfx_${uniqueSuffix}`;
    await migrate(pool, { tables });
    await pool.query(`CREATE TABLE ${fx} (id TEXT NOT NULL)`);
    try {
      const processor = createMessageProcessor({
        name: 'shipping',
        inbox: createPostgresInboxGuard({ client: pool, tables }),
        async handle(event) {
          const tx = consumerTransaction<pg.PoolClient>();
          if (tx === undefined) throw new Error('no transaction');
          await tx.query(`INSERT INTO ${fx} VALUES ($1)`, [(event.payload as { id: string }).id]);
        },
      });
      const event = Shipped.create({ id: 's1' });
      const message = {
        attributes: eventAttributes(event, 'test', 'application/json', null),
        data: utf8.encode(JSON.stringify(event.payload)),
        deliveryAttempt: 1,
        source: 'test',
      };
      expect(await processor.process(message)).toEqual({ action: 'ack', outcome: 'handled' });
      expect(await processor.process({ ...message, deliveryAttempt: 2 })).toEqual({
        action: 'ack',
        outcome: 'duplicate',
      });
      expect((await pool.query(`SELECT id FROM ${fx}`)).rows).toEqual([{ id: 's1' }]);
    } finally {
      await pool.query(`DROP TABLE IF EXISTS ${tables.outbox}, ${tables.inbox}, ${fx}`);
    }
  });
});
