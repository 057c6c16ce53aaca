import type { OutboxEncoderOptions } from '@cqrs-ts/core/spi';
import {
  createPostgresInboxStore,
  createPostgresOutboxStore,
  migrate,
  type PostgresClient,
} from '@cqrs-ts/postgres';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import postgres from 'postgres';
import { describeOutboxContract, type OutboxHarness } from '../../core/test/support/outbox-contract.ts';
import { PG_URL, service, uniqueSuffix } from '../../core/test/support/services.ts';
import { toRecord } from '../src/postgres-outbox-store.ts';

const available = await service('postgres', async () => {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  await c.connect();
  await c.end();
});

type Flavor = 'pg' | 'postgres.js' | 'kysely';

function harness(flavor: Flavor) {
  return async (): Promise<OutboxHarness<PostgresClient> | undefined> => {
    if (!available) return undefined;
    const sfx = `${flavor.replace(/\W/g, '')}_${uniqueSuffix}`;
    const tables = { outbox: `ob_${sfx}`, inbox: `ib_${sfx}` };
    const effects = `fx_${sfx}`;
    const pool = new pg.Pool({ connectionString: PG_URL, max: 6 });
    pool.on('error', () => {});
    const sql = flavor === 'postgres.js' ? postgres(PG_URL, { max: 6, onnotice: () => {} }) : undefined;
    const db =
      flavor === 'kysely' ? new Kysely<never>({ dialect: new PostgresDialect({ pool }) }) : undefined;
    const client: PostgresClient = sql ?? db ?? pool;
    await migrate(client, { tables });
    await migrate(client, { tables });
    await pool.query(`CREATE TABLE IF NOT EXISTS ${effects} (id TEXT NOT NULL)`);

    const rollbackSignal = new Error('rollback');
    const tx = async <T>(fn: (tx: PostgresClient) => Promise<T>): Promise<T> => {
      if (sql) return (await sql.begin((t) => fn(t as unknown as PostgresClient))) as T;
      if (db) return db.transaction().execute((t) => fn(t));
      const c = await pool.connect();
      try {
        await c.query('BEGIN');
        const r = await fn(c);
        await c.query('COMMIT');
        return r;
      } catch (e) {
        await c.query('ROLLBACK');
        throw e;
      } finally {
        c.release();
      }
    };
    return {
      store: (options?: OutboxEncoderOptions) => createPostgresOutboxStore({ client, tables, ...options }),
      inbox: createPostgresInboxStore({ client, tables }),
      tx,
      async rollback(fn) {
        await tx(async (t) => {
          await fn(t);
          throw rollbackSignal;
        }).catch((e: unknown) => {
          if (e !== rollbackSignal) throw e;
        });
      },
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
      async recordEffect(t, id) {
        const e = t as { query?: unknown };
        if (typeof e.query === 'function')
          await (t as pg.PoolClient).query(`INSERT INTO ${effects} (id) VALUES ($1)`, [id]);
        else if (sql)
          await (t as unknown as postgres.Sql).unsafe(`INSERT INTO ${effects} (id) VALUES ($1)`, [id]);
        else
          await (t as Kysely<never>).executeQuery({
            sql: `INSERT INTO ${effects} (id) VALUES ($1)`,
            parameters: [id],
            query: { kind: 'RawNode', sqlFragments: [''], parameters: [] },
            queryId: { queryId: 'x' },
          } as never);
      },
      async effects() {
        return Number((await pool.query(`SELECT count(*) AS n FROM ${effects}`)).rows[0].n);
      },
      async reset() {
        await pool.query(`TRUNCATE ${tables.outbox}, ${tables.inbox}, ${effects}`);
      },
      async close() {
        await pool.query(`DROP TABLE IF EXISTS ${tables.outbox}, ${tables.inbox}, ${effects}`);
        await sql?.end();
        if (db) await db.destroy();
        else await pool.end();
      },
    };
  };
}

describeOutboxContract('postgres (pg)', harness('pg'));
describeOutboxContract('postgres (postgres.js)', harness('postgres.js'));
describeOutboxContract('postgres (kysely)', harness('kysely'));
