import type { PostgresClient } from '@cqrs-ts/postgres';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import postgres from 'postgres';
import { PG_URL, service, uniqueSuffix } from '../../core/test/support/services.ts';
import { transactionOf } from '../src/postgres-executor.ts';

export const available = await service('postgres', async () => {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  await c.connect();
  await c.end();
});

export type Flavor = 'pg' | 'postgres.js' | 'kysely';
export const FLAVORS: readonly Flavor[] = ['pg', 'postgres.js', 'kysely'];

/** One client of a flavor, plus a pg pool for the test's own queries, an effects table and transactions. */
export async function connect(flavor: Flavor, prefix: string) {
  const sfx = `${prefix}_${flavor.replace(/\W/g, '')}_${uniqueSuffix}`;
  const effectsTable = `fx_${sfx}`;
  const pool = new pg.Pool({ connectionString: PG_URL, max: 6 });
  pool.on('error', () => {});
  const sql = flavor === 'postgres.js' ? postgres(PG_URL, { max: 6, onnotice: () => {} }) : undefined;
  const db = flavor === 'kysely' ? new Kysely<never>({ dialect: new PostgresDialect({ pool }) }) : undefined;
  /** The client as the guard takes it (a pool, a postgres.js `sql` or Kysely: each opens transactions). */
  const transactional = sql ?? db ?? pool;
  const client: PostgresClient = transactional;
  await pool.query(`CREATE TABLE IF NOT EXISTS ${effectsTable} (id TEXT NOT NULL)`);

  const transact = transactionOf(client)!;
  /** Runs `fn` in a transaction of the flavor, with the package's own transaction helper. */
  const tx = <T>(fn: (tx: PostgresClient) => Promise<T>): Promise<T> => transact((_execute, t) => fn(t));
  return {
    sfx,
    pool,
    sql,
    db,
    client,
    transactional,
    tx,
    /** Inserts an effect row in `t`, whatever the flavor of the transaction. */
    async recordEffect(t: PostgresClient, id: string) {
      const text = `INSERT INTO ${effectsTable} (id) VALUES ($1)`;
      if (typeof (t as { query?: unknown }).query === 'function')
        await (t as pg.PoolClient).query(text, [id]);
      else if (sql) await (t as unknown as postgres.Sql).unsafe(text, [id]);
      else
        await (t as Kysely<never>).executeQuery({
          sql: text,
          parameters: [id],
          query: { kind: 'RawNode', sqlFragments: [''], parameters: [] },
          queryId: { queryId: 'fx' },
        } as never);
    },
    async effects() {
      return Number((await pool.query(`SELECT count(*) AS n FROM ${effectsTable}`)).rows[0].n);
    },
    /** Empties the effects table and these tables. */
    async truncate(...tables: string[]) {
      await pool.query(`TRUNCATE ${[...tables, effectsTable].join(', ')}`);
    },
    /** Drops the effects table and these tables, and ends the clients. */
    async end(...tables: string[]) {
      await pool.query(`DROP TABLE IF EXISTS ${[...tables, effectsTable].join(', ')}`);
      await sql?.end();
      if (db) await db.destroy();
      else await pool.end();
    },
  };
}
