import { setTimeout as delay } from 'node:timers/promises';
import { createMysqlEventStore, migrate } from '@cqrs-ts/mysql';
import { describeEventLogGapContract } from '@cqrs-ts/testing/contracts';
import mysql from 'mysql2/promise';
import { MYSQL_URL, uniqueSuffix } from '../../core/test/support/services.ts';
import { available } from './support.ts';

describeEventLogGapContract(
  'mariadb',
  async () => {
    if (!available) return undefined;
    // 8 writers, the reader, its gap probes and the naive reader each hold a connection
    const pool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 14 });
    const tables = { outbox: `gap_${uniqueSuffix}`, inbox: `gapi_${uniqueSuffix}` };
    await migrate(pool, { tables });
    // the gap timeout only matters for rolled-back appends (about 80 in this run)
    const store = createMysqlEventStore({ client: pool, tables, gapTimeoutMs: 250 });
    return {
      log: store,
      async write(_writer, batch) {
        const tx = await pool.getConnection();
        try {
          await tx.query('START TRANSACTION');
          if (batch.streamId === undefined) await store.outbox.append(tx, batch.events);
          else await store.appendToStream(tx, batch.streamId, batch.events, { expectedVersion: 'any' });
          if (batch.commitDelayMs > 0) await delay(batch.commitDelayMs);
          await tx.query(batch.rollback ? 'ROLLBACK' : 'COMMIT');
        } catch (error) {
          await tx.query('ROLLBACK').catch(() => {});
          throw error;
        } finally {
          tx.release();
        }
      },
      async naiveRead(afterSeq, limit) {
        const [rows] = await pool.query(
          `SELECT id, seq FROM ${tables.outbox} WHERE seq > ? ORDER BY seq LIMIT ?`,
          [afterSeq, limit],
        );
        return (rows as { id: string; seq: number }[]).map((r) => ({ id: r.id, seq: Number(r.seq) }));
      },
      async close() {
        const all = [tables.outbox, `${tables.outbox}_archive`, `${tables.outbox}_stream`, tables.inbox];
        await pool.query(`DROP TABLE IF EXISTS ${all.join(', ')}`);
        await pool.end();
      },
    };
  },
  { report: (f) => console.log(`mariadb gap test: ${JSON.stringify(f)}`) },
);
