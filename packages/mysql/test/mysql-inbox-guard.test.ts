import { createMysqlInboxGuard, type MysqlTransaction, migrate } from '@cqrs-ts/mysql';
import { Kysely, MysqlDialect, sql } from 'kysely';
import { createPool as createCallbackPool } from 'mysql2';
import mysql from 'mysql2/promise';
import { afterAll, describe, expect, it } from 'vitest';
import { MYSQL_URL, service, uniqueSuffix } from '../../core/test/support/services.ts';

const available = await service('mariadb', async () => {
  const c = await mysql.createConnection({ uri: MYSQL_URL, connectTimeout: 2000 });
  await c.end();
});

describe.skipIf(!available)('mariadb inbox guard', () => {
  const pool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 4 });
  const db = new Kysely<never>({
    dialect: new MysqlDialect({ pool: createCallbackPool({ uri: MYSQL_URL, connectionLimit: 2 }) }),
  });
  afterAll(async () => {
    await pool.end();
    await db.destroy();
  });

  for (const flavor of ['mysql2', 'kysely'] as const) {
    it(`${flavor}: effects and mark commit together; a duplicate or a rollback leaves one effect`, async () => {
      const sfx = `${flavor}_${uniqueSuffix}`;
      const tables = { outbox: `gob_${sfx}`, inbox: `gib_${sfx}` };
      const fx = `gfx_${sfx}`;
      await migrate(pool, { tables });
      await pool.query(`CREATE TABLE ${fx} (id VARCHAR(10) NOT NULL) ENGINE=InnoDB`);
      try {
        const guard = createMysqlInboxGuard({ client: flavor === 'kysely' ? db : pool, tables });
        const insert = async (tx: MysqlTransaction) => {
          if (flavor === 'kysely')
            await sql.raw(`INSERT INTO ${fx} VALUES ('a')`).execute(tx as Kysely<never>);
          else await (tx as mysql.PoolConnection).query(`INSERT INTO ${fx} VALUES ('a')`);
        };
        await expect(
          guard.once('m1', 'c', async (tx) => {
            await insert(tx);
            throw new Error('handler failed');
          }),
        ).rejects.toThrow('handler failed');
        const count = async () =>
          ((await pool.query(`SELECT count(*) AS n FROM ${fx}`)) as [Array<{ n: number }>, unknown])[0][0]!.n;
        expect(Number(await count())).toBe(0);
        expect(await guard.once('m1', 'c', insert)).toBe(true);
        expect(await guard.once('m1', 'c', insert)).toBe(false);
        expect(await guard.once('m1', 'other', insert)).toBe(true);
        expect(Number(await count())).toBe(2);
      } finally {
        await pool.query(`DROP TABLE IF EXISTS ${tables.outbox}, ${tables.inbox}, ${fx}`);
      }
    });
  }
});
